"""Retrieval → a cited answer (or an explained refusal)."""

from __future__ import annotations

from ..corpus import Section
from ..retrieval import Retrieval, Retriever
from ..text import conversation_language, detect_language
from ..units import Unit, join_cells
from .followup import resolve_question
from .model import Answer, AnswerItem, Citation
from .render import display, lead, refusal_message, version_note
from .select import Selection, Selector


def compose(
    retriever: Retriever,
    question: str,
    history: list[dict[str, str]] | None = None,
    top_k: int | None = None,
    language: str | None = None,
) -> Answer:
    """Answer ``question`` (with the conversation so far) from the retriever's index;
    ``language`` is the asker's interface language, which — after the script of their earlier
    questions — decides the script of a question written alike in both (「那收益有多少？」)."""
    tools = retriever.tools
    preferred = conversation_language(history or [], tools) or language
    # a follow-up read as its slips and chat spellings say (「那風險ㄋ」 is 「那風險呢」)
    respelled = retriever.analyzer.patterns.respell(question)
    resolved = resolve_question(respelled, history or [], tools)
    resolved = question if resolved == respelled else resolved
    result = retriever.search(resolved, top_k=top_k, language=preferred)
    language = result.language if resolved == question else detect_language(question, tools, preferred)
    analysis = result.analysis
    intent = analysis.intent if analysis else "other"
    selection = None if result.refused or not result.hits else Selector(retriever, result).select()
    if selection is None or not selection.units:  # refused, or nothing quotable: never an uncited answer
        return _refusal(result, question, resolved, language, intent)

    units = selection.units if selection.layout == "table" else _distinct(selection.units)
    items: list[AnswerItem] = []
    citations: list[Citation] = []
    numbers: dict[tuple[str, int, int], int] = {}
    hit_of = {h.section.key: h for h in result.hits}
    for unit in units:
        n = numbers.setdefault((unit.key, unit.start, unit.end), len(numbers) + 1)
        if n == len(citations) + 1:
            citations.append(_citation(retriever, result, unit, n, hit_of, selection))
        text = display(unit, compact=selection.compact)
        cells = tuple(unit.cells) if selection.layout == "table" and unit.kind == "row" else ()
        if language == "zh-cn":
            text = tools.to_simplified(text)
            cells = tuple(tools.to_simplified(c) for c in cells)
        items.append(
            AnswerItem(
                text=text,
                citations=(n,),
                kind=unit.kind,
                label=_label(unit, language, tools),
                cells=cells,
                links=_links(retriever.section(unit.key), unit),
            )
        )
    layout, headers = selection.layout, tuple(selection.headers)
    if layout == "table" and selection.rows and all(u.kind == "step" for row in selection.rows for u in row):
        items, headers = _step_rows(selection, items, units), headers
    if language == "zh-cn":
        headers = tuple(tools.to_simplified(h) for h in headers)
    sides = tuple(tools.to_simplified(s) for s in selection.sides) if language == "zh-cn" else selection.sides
    column = tools.to_simplified(selection.column) if language == "zh-cn" else selection.column
    intro = lead(layout, language, n=len(items), sides=sides, column=column) if layout != "text" else None
    if layout == "list" and units and units[0].kind == "sentence":
        intro = None  # the section's own introduction leads the list
    return Answer(
        question=question,
        language=language,
        refused=False,
        items=tuple(items),
        citations=tuple(citations),
        retrieval=result,
        intent=intent,
        layout=layout,
        lead=intro,
        headers=headers,
        note=version_note(language, {retriever.section(u.key).lang for u in units}),
        resolved_question=resolved if resolved != question else None,
    )


def _distinct(units: list[Unit]) -> list[Unit]:
    """The units without a repeat of the same words (a page that says a paragraph in two
    sections, like the English page's EigenLayer card): each quoted once, where first met."""
    seen: set[str] = set()
    out = []
    for unit in units:
        if unit.text not in seen:
            seen.add(unit.text)
            out.append(unit)
    return out


def _label(unit: Unit, language: str, tools: object) -> str:
    from ..text import TextTools

    assert isinstance(tools, TextTools)
    if unit.kind == "row" and unit.table_kind == "labels" and unit.label:
        return tools.to_simplified(unit.label) if language == "zh-cn" else unit.label
    return ""


def _links(section: Section, unit: Unit) -> tuple[dict[str, str], ...]:
    """The links that go with the unit's line (a video's page and address, 「造訪 EigenLayer」)."""
    block = section.blocks[unit.line] if unit.line < len(section.blocks) else None
    if block is None:
        return ()
    return tuple({"text": section.links[i].text, "url": section.links[i].url} for i in block.links)


def _step_rows(selection: Selection, items: list[AnswerItem], units: list[Unit]) -> list[AnswerItem]:
    """A steps table shown side by side: one item per table line, its cells the columns' steps."""
    by_unit = {id(u): item for u, item in zip(units, items)}
    width = len(selection.headers)
    rows = []
    for row in selection.rows:
        cells = [""] * width
        cited: list[int] = []
        for u in row:
            item = by_unit[id(u)]
            if 0 <= u.column < width:
                cells[u.column] = item.text
            cited += list(item.citations)
        rows.append(AnswerItem(text=join_cells(cells), citations=tuple(cited), kind="row", cells=tuple(cells)))
    return rows


def _citation(
    retriever: Retriever, result: Retrieval, unit: Unit, n: int, hit_of: dict, selection: Selection
) -> Citation:
    section = retriever.section(unit.key)
    hit = hit_of.get(unit.key)
    scores = hit.scores.to_dict() if hit else {}
    main = retriever.main_version(section)
    return Citation(
        n=n,
        title=section.title,
        anchor=section.anchor,
        url=section.url,
        snippet=section.text[unit.start : unit.end],
        span=(unit.start, unit.end),
        scores=scores,
        lang=section.lang,
        original={"lang": main.lang, "title": main.title, "url": main.url} if main is not section else None,
    )


def _refusal(result: Retrieval, question: str, resolved: str, language: str, intent: str) -> Answer:
    decision = result.refusal
    reason = (decision.reason if decision else "") or result.evidence.get("reason") or "no_match"
    uncovered = list(decision.uncovered) if decision else []
    suggestions: tuple[dict[str, str], ...] = ()
    if reason != "not_a_question":
        suggestions = tuple(
            {"title": h.section.title, "anchor": h.anchor, "url": h.section.url, "lang": h.section.lang}
            for h in result.hits[:3]
        )
    kind = result.analysis.not_a_question if result.analysis else ""
    message = refusal_message(reason, language, uncovered, suggestions=bool(suggestions), kind=kind)
    return Answer(
        question=question,
        language=language,
        refused=True,
        items=(),
        citations=(),
        retrieval=result,
        intent=intent,
        message=message,
        suggestions=suggestions,
        refusal={"reason": reason, "uncovered": uncovered, "message": message},
        resolved_question=resolved if resolved != question else None,
    )

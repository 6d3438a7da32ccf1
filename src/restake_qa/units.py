"""Answer units: the pieces of a section an answer can quote, each keeping its structure.

A section's lines become units by what they are (:class:`restake_qa.corpus.Block`):

* a row of a **labels** table (「術語｜描述」, 「風險｜描述」: a term and its description) is one
  ``row`` unit with its ``label`` and cells;
* a row of a **comparison** table (「質押｜再質押」) is one ``row`` unit whose cells stay aligned
  with the table's headers;
* a **steps** table (cells numbered 1., 2., 3. in each column: 「初學者｜進階使用者」) gives one
  ``step`` unit per cell, with its column and number, so a column reads as steps in order;
* a list item is an ``item``; a video line a ``video``;
* paragraphs and alert notes are cut into ``sentence`` / ``alert`` units.

Every unit is an exact span of its section's text (so it can be cited), and knows which of
the index's quotable sentences lie inside it (so the model's similarity to it is known).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .chunking import Sentence, section_sentences
from .corpus import Block, Section
from .text import CJK, SENTENCE_END

_STEP = re.compile(r"^\s*(\d+)[.、)]?\s+")
_DESCRIPTION_HEADERS = {"描述", "说明", "說明", "description", "descriptions", "details"}


@dataclass(frozen=True)
class Unit:
    key: str  # the section's key
    kind: str  # sentence, alert, row, step, item, video
    start: int  # span in the section's text
    end: int
    text: str  # section.text[start:end]
    line: int  # which line of the section
    label: str = ""  # a labels-table row's term (營運者), an alert's title (建議須知)
    headers: tuple[str, ...] = ()  # a row's table headers
    cells: tuple[str, ...] = ()  # a row's cells, aligned with headers
    table: int = -1  # the section's table index (rows and steps)
    table_kind: str = ""  # labels, comparison or steps
    column: int = -1  # a step's column
    order: int = 0  # a step's or an item's number
    rows: tuple[int, ...] = field(default=(), compare=False)  # index sentence rows inside the unit


def join_cells(cells: Iterable[str]) -> str:
    """Cells read as one line, separated as the page's language separates them: 「；」 between
    Chinese cells, "; " between English ones (mdx_text.Style, which wrote the row's text)."""
    kept = [c for c in cells if c]
    return ("；" if any(CJK.search(c) for c in kept) else "; ").join(kept)


def table_kind(section: Section, table: int) -> str:
    """``steps``, ``labels`` or ``comparison``, from a table's header and cells."""
    header = section.tables[table]
    cells = [c for b in section.blocks if b.kind == "row" and b.table == table for c in b.cells if c]
    numbered = sum(bool(_STEP.match(c)) or bool(re.match(r"^\s*\d+\s", c)) for c in cells)
    if cells and numbered * 2 >= len(cells):
        return "steps"
    if len(header) >= 2 and header[1].strip().lower() in _DESCRIPTION_HEADERS:
        return "labels"
    return "comparison"


def section_units(section: Section, sentence_rows: dict[tuple[int, int], int] | None = None) -> list[Unit]:
    """The units of ``section`` in page order. ``sentence_rows`` maps an index sentence's
    ``(start, end)`` in this section to its row in the index."""
    spans = sentence_rows or {}
    kinds = {t: table_kind(section, t) for t in range(len(section.tables))}
    units: list[Unit] = []
    for line_no, (a, b, block) in enumerate(section.line_spans()):
        line = section.text[a:b]
        if not line.strip():
            continue
        if block.kind == "row" and block.table in kinds:
            units += _row_units(section, line_no, a, line, block, kinds[block.table])
        elif block.kind in ("item", "video", "heading"):
            order = int(m.group(1)) if (m := _STEP.match(line)) else 0
            kind = "item" if block.kind != "video" else "video"
            units.append(Unit(section.key, kind, a, b, line, line_no, label=block.label, order=order))
        else:
            kind = "alert" if block.kind == "alert" else "sentence"
            for s, e in _sentences(line):
                label = block.label if block.label and s == 0 else ""
                units.append(Unit(section.key, kind, a + s, a + e, line[s:e], line_no, label=label))
    return [_with_rows(u, spans) for u in units]


def _row_units(section: Section, line_no: int, a: int, line: str, block: Block, kind: str) -> list[Unit]:
    header = section.tables[block.table]
    cells = tuple(block.cells) + ("",) * max(len(header) - len(block.cells), 0)
    if kind != "steps":
        label = cells[0] if kind == "labels" else ""
        return [
            Unit(
                section.key,
                "row",
                a,
                a + len(line),
                line,
                line_no,
                label=label,
                headers=tuple(header),
                cells=cells,
                table=block.table,
                table_kind=kind,
            )
        ]
    out, pos = [], 0
    for column, cell in enumerate(cells):
        if not cell:
            continue
        at = line.find(cell, pos)
        if at < 0:
            continue
        pos = at + len(cell)
        m = re.match(r"^\s*(\d+)", cell)
        out.append(
            Unit(
                section.key,
                "step",
                a + at,
                a + at + len(cell),
                cell,
                line_no,
                headers=tuple(header),
                cells=cells,
                table=block.table,
                table_kind="steps",
                column=column,
                order=int(m.group(1)) if m else 0,
            )
        )
    return out


def _sentences(line: str) -> list[tuple[int, int]]:
    """Spans of the sentences of a line (cut after 。！？!?, and after an English full stop
    followed by a space and a capital), stripped."""
    out, start = [], 0
    ends = [m.end() for m in SENTENCE_END.finditer(line)] + [len(line)]
    for end in ends:
        piece = line[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((start + lead, start + lead + len(piece.strip())))
        start = end
    return out


def _with_rows(unit: Unit, spans: dict[tuple[int, int], int]) -> Unit:
    rows = tuple(r for (s, e), r in spans.items() if s < unit.end and e > unit.start)
    return Unit(**{**unit.__dict__, "rows": rows})


class UnitIndex:
    """Every section's units, and for each the index sentence rows inside it."""

    def __init__(self, sections: tuple[Section, ...], sentences: tuple[Sentence, ...]) -> None:
        by_section: dict[str, dict[tuple[int, int], int]] = {}
        for row, sentence in enumerate(sentences):
            by_section.setdefault(sentence.section_key, {})[(sentence.start, sentence.end)] = row
        self.by_section: dict[str, list[Unit]] = {s.key: section_units(s, by_section.get(s.key, {})) for s in sections}

    def of(self, key: str) -> list[Unit]:
        return self.by_section.get(key, [])


def quotable_sentences(section: Section) -> list[Sentence]:
    """The index's quotable sentences of a section (kept for the sentence vectors)."""
    return section_sentences(section)

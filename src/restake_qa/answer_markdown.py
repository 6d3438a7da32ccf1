"""An answer as one Markdown message, for chat apps that show text (the OpenAI-compatible API).

:func:`format_answer_markdown` is the one place that turns the answer JSON
(:meth:`restake_qa.answer.Answer.to_dict`) into a message; :func:`history_answer` reads such a
message back into the answer text a later turn's ``history`` carries, as the chat page sends it.

An answer reads::

    再質押是指…服務。[1] 透過再質押…(AVS)。[2]

    *The source page is in Traditional Chinese; this answer quotes it.*   (English questions)

    **來源**

    - [1][2] [什麼是再質押？](https://ethereum.org/zh-tw/restaking/#what-is-restaking)

and a refusal is its message followed by the suggested sections as links. Text from the page
is escaped, so a ``*`` or ``[`` in it shows as itself; the ``[n]`` markers are not.
"""

from __future__ import annotations

import re
from typing import Any

from .answer import VERSION_NOTES
from .answer.render import REFUSALS
from .units import join_cells

#: The heading of the list of cited sections, in the asker's language.
SOURCES_HEADING = {"zh-tw": "來源", "zh-cn": "来源", "en": "Sources"}
#: The link text for the top of the page (a section without a title).
PAGE_TOP = {"zh-tw": "頁首", "zh-cn": "页首", "en": "top of page"}

_SPECIAL = re.compile(r"([\\`*_\[\]<>~])")
_ESCAPED = re.compile(r"\\([\\`*_\[\]<>~])")
_URL_UNSAFE = {" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E"}


def escape(text: str) -> str:
    """``text`` as Markdown that shows exactly ``text`` (no emphasis, links or HTML)."""
    return _SPECIAL.sub(r"\\\1", text)


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def _link(title: str, url: str, language: str) -> str:
    target = "".join(_URL_UNSAFE.get(c, c) for c in url)
    return f"[{escape(title or PAGE_TOP[language])}]({target})"


def _sources(citations: list[dict[str, Any]], language: str) -> str:
    """One line per cited section with all its citation numbers, in order of first citation."""
    groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for c in citations:
        groups.setdefault(c["url"] or c["title"], (c, []))[1].append(c["n"])
    lines = [
        "- " + "".join(f"[{n}]" for n in numbers) + " " + _link(c["title"], c["url"], language)
        for c, numbers in groups.values()
    ]
    return f"**{SOURCES_HEADING[language]}**\n\n" + "\n".join(lines)


def format_answer_markdown(body: dict[str, Any]) -> str:
    """The answer JSON (``Answer.to_dict()``) as one Markdown message in the asker's language:
    the cited sentences with their ``[n]`` markers, the note, and the cited sections as links;
    or, for a refusal, its message and the suggested sections as links."""
    language = body.get("language") or "zh-tw"
    if body["refused"]:
        parts = [escape(body.get("message") or REFUSALS["no_match"][language])]
        links = [f"- {_link(s['title'], s['url'], language)}" for s in body.get("suggestions", [])]
        if links:
            parts.append("\n".join(links))
        return "\n\n".join(parts)
    parts = [_body(body)]
    if body.get("note"):
        parts.append(f"*{escape(body['note'])}*")
    if body["citations"]:
        parts.append(_sources(body["citations"], language))
    return "\n\n".join(parts)


def _marks(item: dict[str, Any]) -> str:
    """The item's citation markers, and the page's links for its line (a video's address)."""
    links = " · ".join(_link(k["text"] or k["url"], k["url"], "zh-tw") for k in item.get("links") or ())
    return "".join(f"[{n}]" for n in item["citations"]) + (f" ({links})" if links else "")


def _body(body: dict[str, Any]) -> str:
    """The quoted items as the answer's layout shows them: running text, a bulleted list,
    numbered steps or a table, after the lead-in line if there is one."""
    items = body.get("items") or body["sentences"]
    layout = body.get("layout") or "text"
    lead = [escape(body["lead"])] if body.get("lead") else []
    if layout == "list":
        lines = [f"- {escape(i['text'])}{_marks(i)}" for i in items]
    elif layout == "steps":
        lines = [f"- {escape(i['text'])}{_marks(i)}" for i in items]
    elif layout == "table" and body.get("headers"):
        headers = body["headers"]
        lines = ["| " + " | ".join(escape(h) for h in headers) + " | |", "|" + "---|" * (len(headers) + 1)]
        for i in items:
            cells = list(i.get("cells") or [i["text"]]) + [""] * len(headers)
            lines.append("| " + " | ".join(escape(c) for c in cells[: len(headers)]) + f" | {_marks(i)} |")
    else:
        return "\n\n".join([*lead, " ".join(escape(i["text"]) + _marks(i) for i in items)])
    return "\n\n".join([*lead, "\n".join(lines)])


_HEADINGS = {f"**{heading}**" for heading in SOURCES_HEADING.values()}
_NOTES = {f"*{escape(note)}*" for note in VERSION_NOTES.values()}


def history_answer(content: str) -> str:
    """What an earlier assistant message contributes to ``history``: the answer text with its
    markers (as the chat page sends it), without the note and sources; nothing for a refusal.
    A message this module did not write (another model's) is kept as it is."""
    text = content.strip()
    if any(text.startswith(escape(message.split("{")[0])) for kind in REFUSALS.values() for message in kind.values()):
        return ""
    kept = []
    for paragraph in text.split("\n\n"):
        if paragraph.strip() in _HEADINGS:
            break
        if paragraph.strip() not in _NOTES:
            kept += [_flatten(line) for line in paragraph.splitlines() if line.strip() and not _RULE.match(line)]
    return _unescape(" ".join(kept)).strip()


_RULE = re.compile(r"^\|(---\|)+$")


#: The page's links the formatter writes after an item's markers: " ([text](url) · [text](url))".
_ITEM_LINKS = re.compile(r"(?<=\]) \((?:\[[^\]]*\]\([^)]*\)(?: · )?)+\)$")


def _flatten(line: str) -> str:
    """A list line without its bullet and its links; a table row as its cells and markers."""
    line = _ITEM_LINKS.sub("", line.strip())
    if line.startswith("- "):
        return line[2:]
    if line.startswith("|") and line.endswith("|"):
        cells = [c.strip() for c in line.strip("|").split("|")]
        return join_cells(cells[:-1]) + cells[-1]
    return line

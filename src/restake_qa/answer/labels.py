"""Does the question name it? Row labels, list items, table headers (for answer/select.py)."""

from __future__ import annotations

import re

from ..text import TextTools

_LABEL_PARTS = re.compile(r"[（(「『“\"）)」』”]|或|\bor\b")


def label_in(label: str, question: str) -> bool:
    """Whether the question names a row's label: the whole label, the label without a closing
    者 (原生再質押 for 原生再質押者) or plural s ("native restaker" for "Native restakers"), or one of
    its parts (罰沒 in 「罰款（或「罰沒」）」)."""
    parts = [label, *(p.strip() for p in _LABEL_PARTS.split(label))]
    for part in parts:
        if len(part) < 2:
            continue
        if part in question or (len(part) > 3 and part[-1] in "者人s" and part[:-1] in question):
            return True
    return False


_CATEGORY = re.compile(r"^(?P<name>[^（(]+)[（(](?P<kind>[^）)]+)[）)]$")
_WHICH = (
    "哪些",
    "哪幾個",
    "哪几个",
    "哪個",
    "哪个",
    "什麼",
    "什么",
    "有啥",
    "提到的",
    "提及的",
    "列出",
    "列舉",
    "列举",
    "所有",
    "which",
    "what",
)


def item_named(label: str, question: str) -> bool:
    """Whether the question names a list item: its name (EigenLayer in 「EigenLayer (再質押平台)」),
    or asks which ones of its kind there are (「有哪些再質押平台」, not 「再質押平台會提供什麼」)."""
    m = _CATEGORY.match(label)
    name, kind = (m["name"].strip(), m["kind"].strip()) if m else (label, "")
    if len(name) >= 2 and name in question:
        return True
    return bool(kind) and any(f"{which}{kind}" in question for which in _WHICH)


def mentioned(headers: list[str], text: str) -> list[str]:
    """The headers ``text`` names, a shorter one only outside the longer ones that hold it
    (質押 in 「質押和再質押」 counts, the 質押 inside 再質押 does not)."""
    out = []
    for h in headers:
        if not h:
            continue
        rest = text
        for longer in headers:
            if longer != h and h in longer:
                rest = rest.replace(longer, " ")
        if h in rest:
            out.append(h)
    return out


def clean(header: str) -> str:
    """A header without its decorative emoji (🫡 初學者 → 初學者)."""
    return re.sub(r"^[^\w\u4e00-\u9fff]+", "", header).strip()


def header_words(header: str, tools: TextTools) -> set[str]:
    return set(tools.lexical_tokens(clean(header)))

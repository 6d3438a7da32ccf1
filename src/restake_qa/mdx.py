"""MDX syntax on top of markdown-it-py: the tokens of a page body, with source line maps.

markdown-it-py parses the CommonMark structure (paragraphs, headings, lists, block quotes,
fenced code, GFM tables). MDX adds JSX tags, ``{…}`` expressions and ``import``/``export``
lines, and drops indented code and raw HTML blocks; the rules added here follow that:

- ``mdx_tags`` (block): a line that holds only tags (``<Alert className="…">``,
  ``<RestakingList/>``, ``</AlertContent>``; one tag may span lines) becomes one token listing
  them. What stands between an opening and a closing tag is parsed as markdown, as MDX does.
- ``mdx_tag`` (inline): a tag inside a paragraph (``<strong>``, ``<a href="…">``, ``<br/>``).
- ``mdx_expression`` (block and inline): ``{/* a comment */}``, ``{' '}``, ``{anything}``.
  A string literal becomes ``mdx_text``; ``{#anchor}`` stays text (heading ids).
- ``mdx_esm`` (block): ``import``/``export`` lines at the top level, up to a blank line.
- ``mdx_raw`` (block): ``<script>``/``<style>`` up to the closing tag, and ``<!-- -->``.

What the tokens mean for the page's text is decided elsewhere (``mdx_text.py``). Every scan is
bounded (:data:`MAX_TAG_CHARS`) and brace pairs are found once per text, so parsing stays
linear in the page's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.ruler import RuleOptionsType
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

#: Longest tag (attributes included) recognised; a longer "tag" is text.
MAX_TAG_CHARS = 4096

_NAME = re.compile(r"[A-Za-z][\w.:-]*")
_ATTR_NAME = re.compile(r"[^\s\"'<>/=`{}]+")
_UNQUOTED = re.compile(r"[^\s\"'=<>`]+")
_SPACE = re.compile(r"\s*")
_STRING = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|`([^`$]*)`)\s*""")
_COMMENT = re.compile(r"\s*/\*.*\*/\s*", re.DOTALL)
_ESM = re.compile(r"(?:import|export)(?=[\s{*])")
_RAW_OPEN = re.compile(r"<(script|style)(?=[\s>/])", re.IGNORECASE)
_BRACE = re.compile(r"[{}]")


@dataclass(frozen=True)
class Tag:
    """One JSX/HTML tag as written: ``<Name attr="v">``, ``</Name>`` or ``<Name/>``."""

    name: str  # "" for a fragment <>…</>
    attrs: dict[str, str] = field(default_factory=dict)  # expression values without their braces
    closing: bool = False
    self_closing: bool = False
    start: int = 0
    end: int = 0

    @property
    def is_component(self) -> bool:
        """JSX components start with a capital letter; lower-case names are HTML."""
        return self.name[:1].isupper()

    def written(self) -> str:
        if self.closing:
            return f"</{self.name}>"
        return f"<{self.name}{'/' if self.self_closing else ''}>"


class Braces:
    """The matching ``}`` of every ``{`` of a text, found in one pass when first asked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._pairs: dict[int, int] | None = None

    def close_of(self, pos: int) -> int | None:
        if self._pairs is None:
            pairs: dict[int, int] = {}
            stack: list[int] = []
            for m in _BRACE.finditer(self.text):
                if m.group() == "{":
                    stack.append(m.start())
                elif stack:
                    pairs[stack.pop()] = m.start()
            self._pairs = pairs
        return self._pairs.get(pos)


def expression_value(inner: str) -> str | None:
    """The text of a string-literal expression (``{' '}`` → ``" "``), else None."""
    m = _STRING.fullmatch(inner)
    if not m:
        return None
    return next(g for g in m.groups() if g is not None)


def is_comment(inner: str) -> bool:
    return bool(_COMMENT.fullmatch(inner))


def scan_tag(src: str, pos: int, braces: Braces, limit: int | None = None) -> Tag | None:
    """The tag starting at ``src[pos] == "<"``, or None if none starts there."""
    limit = min(len(src) if limit is None else limit, pos + MAX_TAG_CHARS)
    if src.startswith("<>", pos):
        return Tag("", start=pos, end=pos + 2)
    if src.startswith("</>", pos):
        return Tag("", closing=True, start=pos, end=pos + 3)
    i = pos + 1
    closing = src.startswith("/", i)
    i += closing
    m = _NAME.match(src, i, limit)
    if not m:
        return None
    name, i = m.group(), m.end()
    attrs: dict[str, str] = {}
    while True:
        j = _SPACE.match(src, i, limit).end()  # type: ignore[union-attr]
        if j >= limit:
            return None
        if src[j] == ">":
            return Tag(name, attrs, closing, False, pos, j + 1)
        if src.startswith("/>", j) and j + 2 <= limit:
            return Tag(name, attrs, closing, True, pos, j + 2)
        if closing or j == i:  # attributes are separated by white space; closing tags have none
            return None
        if src[j] == "{":  # a spread attribute {...props}
            end = braces.close_of(j)
            if end is None or end >= limit:
                return None
            i = end + 1
            continue
        m = _ATTR_NAME.match(src, j, limit)
        if not m:
            return None
        key, i = m.group(), m.end()
        k = _SPACE.match(src, i, limit).end()  # type: ignore[union-attr]
        if k >= limit or src[k] != "=":
            attrs[key] = ""  # a boolean attribute
            continue
        k = _SPACE.match(src, k + 1, limit).end()  # type: ignore[union-attr]
        if k >= limit:
            return None
        quote = src[k]
        if quote in "\"'":
            end = src.find(quote, k + 1, limit)
            if end < 0:
                return None
            attrs[key], i = src[k + 1 : end], end + 1
        elif quote == "{":
            end = braces.close_of(k)
            if end is None or end >= limit:
                return None
            inner = src[k + 1 : end]
            value = expression_value(inner)
            attrs[key], i = (inner if value is None else value), end + 1
        else:
            m = _UNQUOTED.match(src, k, limit)
            if not m:
                return None
            attrs[key], i = m.group(), m.end()


# -- block rules ---------------------------------------------------------------------------
def _braces(state: StateBlock | StateInline) -> Braces:
    """One :class:`Braces` per text: the body (block rules) or a paragraph's inline text."""
    cache: dict[int, Braces] = state.env.setdefault("mdx_braces", {})
    found = cache.get(id(state.src))
    if found is None or found.text is not state.src:
        found = cache[id(state.src)] = Braces(state.src)
    return found


def _line_of(state: StateBlock, start: int, end: int, pos: int) -> int:
    """The line (index) holding ``pos``, searching from ``start``; ``end`` if past it."""
    line = start
    while line < end and state.eMarks[line] < pos:
        line += 1
    return line


def _finish(state: StateBlock, kind: str, start: int, next_line: int, meta: dict[str, Any]) -> bool:
    token = state.push(kind, "", 0)
    token.map = [start, next_line]
    token.meta = meta
    token.content = state.src[state.bMarks[start] : state.eMarks[max(next_line - 1, start)]]
    state.line = next_line
    return True


def _raw_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """``<script>…</script>``, ``<style>…</style>`` and ``<!-- … -->``: not page text."""
    pos = state.bMarks[start] + state.tShift[start]
    src = state.src
    if src.startswith("<!--", pos):
        name, closer = "comment", re.compile("-->")
    else:
        m = _RAW_OPEN.match(src, pos)
        if not m:
            return False
        name = m.group(1).lower()
        closer = re.compile(f"</{name}\\s*>", re.IGNORECASE)
    if silent:
        return True
    limit = state.eMarks[end - 1] if end > start else state.eMarks[start]
    found = closer.search(src, pos, limit)
    next_line = (_line_of(state, start, end, found.end()) + 1) if found else end
    return _finish(state, "mdx_raw", start, min(next_line, end), {"name": name, "closed": bool(found)})


def _esm_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """``import``/``export`` at the top level, up to the next blank line (MDX's ESM)."""
    if state.parentType != "root" or state.sCount[start] != 0:
        return False
    if not _ESM.match(state.src, state.bMarks[start], state.eMarks[start]):
        return False
    if silent:
        return True
    next_line = start + 1
    while next_line < end and not state.isEmpty(next_line):
        next_line += 1
    return _finish(state, "mdx_esm", start, next_line, {})


def _expression_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """A line that is only ``{…}`` (it may span lines): a comment or an expression."""
    pos = state.bMarks[start] + state.tShift[start]
    src = state.src
    if not src.startswith("{", pos):
        return False
    close = _braces(state).close_of(pos)
    limit = state.eMarks[end - 1] if end > start else state.eMarks[start]
    if close is None or close >= limit:
        return False
    line = _line_of(state, start, end, close)
    if line >= end or src[close + 1 : state.eMarks[line]].strip():
        return False  # text follows on the line: an inline expression in a paragraph
    if silent:
        return True
    inner = src[pos + 1 : close]
    return _finish(state, "mdx_expression", start, line + 1, {"inner": inner, "comment": is_comment(inner)})


def _tags_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """A line holding only tags: one token with the tags and the line each starts on."""
    src = state.src
    pos = state.bMarks[start] + state.tShift[start]
    if not src.startswith("<", pos):
        return False
    limit = state.eMarks[end - 1] if end > start else state.eMarks[start]
    braces = _braces(state)
    tags: list[Tag] = []
    while True:
        tag = scan_tag(src, pos, braces, limit)
        if tag is None:
            return False
        tags.append(tag)
        pos = tag.end
        while pos < limit and src[pos] in " \t":
            pos += 1
        if pos >= limit or src[pos] == "\n":
            break
        if src[pos] != "<":
            return False  # text follows on the line: a paragraph with inline tags
    if silent:
        return True
    lines, line = [], start
    for tag in tags:
        line = _line_of(state, line, end, tag.start)
        lines.append(line)
    return _finish(state, "mdx_tags", start, _line_of(state, start, end, pos) + 1, {"tags": tags, "lines": lines})


# -- inline rules --------------------------------------------------------------------------
def _tag_inline(state: StateInline, silent: bool) -> bool:
    if state.src[state.pos] != "<":
        return False
    tag = scan_tag(state.src, state.pos, _braces(state), state.posMax)
    if tag is None:
        return False
    if not silent:
        token = state.push("mdx_tag", "", 0)
        token.meta = {"tag": tag}
        token.content = state.src[tag.start : tag.end]
    state.pos = tag.end
    return True


def _expression_inline(state: StateInline, silent: bool) -> bool:
    src, pos = state.src, state.pos
    if src[pos] != "{" or src.startswith("{#", pos):  # {#anchor} belongs to the heading
        return False
    close = _braces(state).close_of(pos)
    if close is None or close >= state.posMax:
        return False
    if not silent:
        inner = src[pos + 1 : close]
        value = expression_value(inner)
        if value is not None:
            token = state.push("mdx_text", "", 0)
            token.content = value
        else:
            token = state.push("mdx_expression", "", 0)
            token.meta = {"inner": inner, "comment": is_comment(inner)}
            token.content = src[pos : close + 1]
    state.pos = close + 1
    return True


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table").disable(["html_block", "code"])
    terminates: RuleOptionsType = {"alt": ["paragraph", "reference", "blockquote"]}
    md.block.ruler.before("table", "mdx_esm", _esm_block)
    md.block.ruler.before("table", "mdx_raw", _raw_block, terminates)
    md.block.ruler.before("table", "mdx_expression", _expression_block, terminates)
    md.block.ruler.before("table", "mdx_tags", _tags_block, terminates)
    md.inline.ruler.before("html_inline", "mdx_tag", _tag_inline)
    md.inline.ruler.before("html_inline", "mdx_expression", _expression_inline)
    return md


_MD = _markdown()


def parse_mdx(body: str) -> list[Token]:
    """The block tokens of an MDX body (inline tokens carry their children)."""
    return _MD.parse(body, {})

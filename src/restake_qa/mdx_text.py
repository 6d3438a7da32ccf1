"""The tokens of an MDX page (``mdx.py``) → what the page says: headings, lines of text, links.

Text is cut into lines as the page shows them: a source line, a paragraph (``<p>``), a list
item, a table row (「header：cell；header：cell」) or a component's line is one line of its
section. Components are handled by name:

- HTML (lower-case tags): kept as content; ``<a href>`` is a link; block tags (``<p>``,
  ``<br/>``, ``<div>`` …) end a line; the bodies of ``<script>``/``<style>`` are dropped (warned).
- :data:`CONTAINERS` keep their content, and their ``title``/``description`` attributes are
  text (an FAQ question, a card). ``<Alert>``'s short first line is its title and is joined to
  the next line (「建議須知：雖然…」). :data:`LINKS` are links around their text.
  :data:`SILENT` draw something without text.
- Components the components file speaks for (:data:`~restake_qa.components.SUBSTITUTED` and any
  name in a components file) are replaced by its text — one line (passage) of the section, its
  lines joined, so that the chunker keeps it whole and apart from the paragraphs around it, as it
  keeps any paragraph — or warned about when it has none.
- Any other component is unknown: neither it nor what it wraps is indexed, and a warning names
  its line. ``import``/``export`` lines and ``{…}`` expressions (comments included) are warned
  about and dropped; ``{' '}`` is the text it holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from markdown_it.token import Token

from .components import SUBSTITUTED, Components
from .mdx import Tag, parse_mdx
from .sections import Link
from .text import LINE_ENDS

CONTAINERS = frozenset(
    {"Alert", "AlertContent", "AlertDescription", "AlertTitle", "Card", "CardGrid", "ExpandableCard"}
    | {"InfoBanner", "InfoGrid", "Grid", "TableContainer", "UpgradeStatus", "Flex", "Box", "Stack", "Center"}
)
LINKS = {"ButtonLink": ("href", "to"), "Link": ("href", "to"), "InlineLink": ("href", "to")}
#: Links drawn as buttons: their label is a call to action, kept as the link's text only.
BUTTONS = frozenset({"ButtonLink"})
SILENT = frozenset({"AlertEmoji", "Emoji", "Divider"})
#: Attributes of containers whose value is page text.
CONTENT_ATTRIBUTES = ("title", "description")
_BLOCK_HTML = frozenset(
    "p div br hr li ul ol dl dt dd table thead tbody tr td th h1 h2 h3 h4 h5 h6 section article "
    "aside header footer nav main figure figcaption blockquote details summary pre".split()
)
_RAW_HTML = frozenset({"script", "style"})
_HEADING_ID = re.compile(r"^(.*?)\s*\{#([^}\s]+)\}\s*$")
_SEPARATOR_CELL = re.compile(r":?-{2,}:?")
_LEFTOVER_EMPHASIS = re.compile(r"\*\*+|__+")  # CJK punctuation can leave ** unmatched

Warn = Callable[[int, str, str], None]  # (line, kind, message)


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    anchor: str  # "" when the heading has no {#id}
    line: int


@dataclass(frozen=True)
class Line:
    text: str
    line: int
    kind: str = "paragraph"  # paragraph, item, alert, row, video (see corpus.Block)
    label: str = ""  # an alert's title, an item's name
    cells: tuple[str, ...] = ()  # a table row's cells, aligned with header
    header: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (text, url) of the links that go with this line


@dataclass(frozen=True)
class Attachment:
    kind: str
    value: str


Event = Heading | Line | Link | Attachment


@dataclass(frozen=True)
class Style:
    """How lines are joined in the page's language."""

    label: str = "："  # between a label and its text (a table header, an alert title)
    cell: str = "；"  # between the cells of a table row
    title_chars: int = 16  # an alert line this short, without a sentence end, is its title

    @classmethod
    def for_lang(cls, lang: str) -> Style:
        if lang.split("-")[0].lower() in {"zh", "ja", "ko"}:
            return cls()
        return cls(label=": ", cell="; ", title_chars=40)


def page_events(body: str, components: Components, expected: Collection[str], style: Style, warn: Warn) -> list[Event]:
    """What the body says, in order; ``warn`` hears of everything left out (0-based lines)."""
    walker = _Walker(components, frozenset(expected) | SUBSTITUTED, style, warn)
    walker.walk(parse_mdx(body))
    return walker.finish()


class _Walker:
    def __init__(self, components: Components, expected: frozenset[str], style: Style, warn: Warn) -> None:
        self.components, self.expected, self.style, self.warn = components, expected, style, warn
        self.events: list[Event] = []
        self.line = 0
        self.parts: list[str] = []  # the line being gathered
        self.parts_line = 0
        self.parts_started = False
        self.sink: list[str] | None = None  # a heading's or table cell's text, when gathering one
        self.prefix = ""  # "1. " before an ordered list item's first line
        self.captures: list[tuple[str, int, list[str]]] = []  # open links: (closer, event index, text)
        self.skip: tuple[str, int, int] | None = None  # (tag name, depth, line) of what is not indexed
        self.in_alert = 0
        self.label: str | None = None  # an alert's title waiting for its next line
        self.last_line_event: int | None = None
        self.rows: list[tuple[int, list[str]]] = []
        self.in_item = 0  # depth of list items
        self.heading: tuple[int, int, int] = (0, 0, 0)  # (level, line, index of its event)

    # -- text ----------------------------------------------------------------------------
    def text(self, value: str) -> None:
        if self.skip or not value:
            return
        for _, _, parts in self.captures:
            parts.append(value)
        if any(closer in BUTTONS for closer, _, _ in self.captures):
            return  # a button's label (「了解更多」) is its link's text, not a line of the page
        if self.sink is not None:
            self.sink.append(value)
            return
        if not self.parts_started and value.strip():  # the line is where its text starts
            self.parts_line, self.parts_started = self.line, True
        self.parts.append(value)

    def end_line(self) -> None:
        """A line break: ends the line being gathered (a space inside a heading or cell)."""
        if self.sink is not None:
            self.sink.append(" ")
            return
        text = " ".join("".join(self.parts).split())
        self.parts.clear()
        self.parts_started = False
        if text:
            text, self.prefix = self.prefix + text, ""
            self.emit(text, self.parts_line)

    def emit(self, text: str, line: int, kind: str = "", **structure: object) -> None:
        if self.skip:
            return
        kind = kind or ("alert" if self.in_alert else "item" if self.in_item else "paragraph")
        if self.label is not None and self.last_line_event is not None:
            label = self.label
            text = f"{label}{self.style.label}{text}"
            self.events[self.last_line_event] = Line(text, line, "alert" if self.in_alert else kind, label)
            self.label = None
        else:
            self.last_line_event = len(self.events)
            self.events.append(Line(text, line, kind, **structure))  # type: ignore[arg-type]
        if self.in_alert and len(text) <= self.style.title_chars and text[-1] not in LINE_ENDS + "：:":
            self.label = text

    def record(self, event: Event) -> int:
        if self.skip:
            return -1
        self.events.append(event)
        return len(self.events) - 1

    # -- tokens --------------------------------------------------------------------------
    def walk(self, tokens: list[Token]) -> None:
        for token in tokens:
            if token.map:
                self.line = token.map[0]
            handler = getattr(self, "_" + token.type, None)
            if handler is not None:
                handler(token)
            elif token.type.endswith(("_open", "_close")) or token.type == "hr":
                self.end_line()

    def finish(self) -> list[Event]:
        self.end_line()
        for _, index, parts in self.captures:
            self._close_link(index, parts)
        self.captures.clear()
        if self.skip:
            name, _, line = self.skip
            self.warn(line, "mdx_syntax", f"<{name}> is never closed; nothing after it is indexed")
        return self.events

    def _inline(self, token: Token) -> None:
        for child in token.children or []:
            kind = child.type
            if kind in ("text", "code_inline"):
                self.text(_LEFTOVER_EMPHASIS.sub("", child.content) if kind == "text" else child.content)
            elif kind == "mdx_text":
                self.text(child.content)
            elif kind in ("softbreak", "hardbreak"):
                self.end_line()
                self.line += 1
            elif kind == "link_open":
                self._open_link("](", str(child.attrGet("href") or ""))
            elif kind == "link_close":
                self._close_links("](")
            elif kind == "mdx_tag":
                self._tag(child.meta["tag"], self.line, inline=True)
            elif kind == "mdx_expression":
                self._expression(child.meta, self.line)
            self.line += child.content.count("\n") if kind in ("mdx_tag", "mdx_expression", "html_inline") else 0

    def _heading_open(self, token: Token) -> None:
        self.end_line()
        self.heading = (int(token.tag[1:]), self.line, len(self.events))
        self.sink = []

    def _heading_close(self, token: Token) -> None:
        text = " ".join("".join(self.sink or []).split())
        self.sink = None
        level, line, at = self.heading
        m = _HEADING_ID.match(text)
        title, anchor = (m.group(1), m.group(2)) if m else (text, "")
        self.label = None
        if not self.skip:
            # before the links recorded inside the heading: they belong to its section
            inside = self.events[at:]
            del self.events[at:]
            self.events += [Heading(level, title, anchor, line), *inside]
            self.captures = [(c, i + (i >= at), parts) for c, i, parts in self.captures]
            if self.last_line_event is not None and self.last_line_event >= at:
                self.last_line_event += 1

    def _list_item_open(self, token: Token) -> None:
        self.end_line()
        self.in_item += 1
        self.prefix = f"{token.info}{token.markup} " if token.info else ""

    def _list_item_close(self, token: Token) -> None:
        self.end_line()
        self.in_item = max(self.in_item - 1, 0)
        self.prefix = ""

    def _table_open(self, token: Token) -> None:
        self.end_line()
        self.rows = []

    def _tr_open(self, token: Token) -> None:
        self.rows.append((self.line, []))

    def _th_open(self, token: Token) -> None:
        self.sink = []

    def _th_close(self, token: Token) -> None:
        self.rows[-1][1].append(" ".join("".join(self.sink or []).split()))
        self.sink = None

    _td_open, _td_close = _th_open, _th_close

    def _table_close(self, token: Token) -> None:
        """One line per data row: 「header：cell；header：cell」; empty and spacer rows skipped."""
        if not self.rows:
            return
        header = self.rows[0][1]
        for line, cells in self.rows[1:]:
            if not any(cells) or all(_SEPARATOR_CELL.fullmatch(c) for c in cells):
                continue
            row = ""
            for name, cell in zip(header, cells):
                if not cell:
                    continue
                if row:
                    row += " " if row[-1] in LINE_ENDS else self.style.cell
                row += f"{name}{self.style.label}{cell}" if name else cell
            aligned = tuple(cells[: len(header)]) + ("",) * max(len(header) - len(cells), 0)
            self.emit(row, line, "row", cells=aligned, header=tuple(header))
        self.rows = []

    def _fence(self, token: Token) -> None:
        self.end_line()
        for offset, raw in enumerate(token.content.split("\n")):
            if raw.strip():
                self.emit(" ".join(raw.split()), self.line + 1 + offset)

    def _mdx_tags(self, token: Token) -> None:
        for tag, line in zip(token.meta["tags"], token.meta["lines"]):
            self._tag(tag, line)

    def _mdx_expression(self, token: Token) -> None:
        self._expression(token.meta, self.line)

    def _mdx_esm(self, token: Token) -> None:
        if not self.skip:
            first = token.content.split("\n", 1)[0].strip()
            self.warn(self.line, "mdx_syntax", f"`{first[:60]}` is MDX code, not page text: not indexed")

    def _mdx_raw(self, token: Token) -> None:
        name = token.meta["name"]
        if self.skip or name == "comment":
            return
        self.end_line()
        closed = "" if token.meta["closed"] else " (never closed: nothing after it is indexed)"
        self.warn(self.line, "script_or_style", f"the body of <{name}> is not page text: not indexed{closed}")

    # -- MDX -----------------------------------------------------------------------------
    def _expression(self, meta: dict, line: int) -> None:
        if self.skip:
            return
        if meta["comment"]:
            self.warn(line, "mdx_syntax", "comment {/* … */} is not page text: not indexed")
        else:
            inner = " ".join(meta["inner"].split())
            self.warn(line, "mdx_syntax", f"expression {{{inner[:40]}}} is code, not page text: not indexed")

    def _open_link(self, closer: str, url: str) -> None:
        index = self.record(Link("", url))
        if index >= 0:
            self.captures.append((closer, index, []))

    def _close_links(self, closer: str) -> None:
        for i in range(len(self.captures) - 1, -1, -1):
            if self.captures[i][0] == closer:
                _, index, parts = self.captures.pop(i)
                self._close_link(index, parts)
                return

    def _close_link(self, index: int, parts: list[str]) -> None:
        event = self.events[index]
        assert isinstance(event, Link)
        self.events[index] = Link(" ".join("".join(parts).split()), event.url)

    def _tag(self, tag: Tag, line: int, inline: bool = False) -> None:
        if self.skip:
            name, depth, first = self.skip
            same = tag.name == name or (not tag.is_component and tag.name.lower() == name.lower())
            if same and not tag.self_closing:
                depth += -1 if tag.closing else 1
                self.skip = None if depth == 0 else (name, depth, first)
            return
        name = tag.name
        if not tag.is_component:
            self._html(tag, line)
            return
        # A component on its own line is a block; one inside a sentence breaks it only if it
        # brings lines of its own (a card's title, a components file's text).
        if not inline or name in self.expected or name in CONTAINERS:
            self.end_line()
        if tag.closing:
            self.in_alert = max(self.in_alert - (name == "Alert"), 0)
            self.label = None  # a title joins a line of its own component only
            self._close_links(name)
            return
        if name in SILENT:
            return
        if name in self.expected:
            self._substitute(tag, line)
        elif name in CONTAINERS:
            self.in_alert += name == "Alert" and not tag.self_closing
            self._container_text(tag, line)
        elif name in LINKS:
            url = next((tag.attrs[a] for a in LINKS[name] if tag.attrs.get(a)), "")
            if url and not tag.self_closing:
                self._open_link(name, url)
            elif url:
                self.record(Link("", url))
        else:
            shown = tag.written() if tag.self_closing else f"<{name}>…</{name}>"
            what = "it is" if tag.self_closing else "it and what it wraps are"
            self.warn(line, "unknown_component", f"unknown component {shown}: {what} not indexed")
            if not tag.self_closing:
                self.skip = (name, 1, line)

    def _container_text(self, tag: Tag, line: int) -> None:
        """A card's ``title`` and ``description``: the title labels the card's first line
        (「EigenPods: A set of smart contracts…」) unless it ends a sentence itself."""
        title, description = (" ".join(tag.attrs.get(a, "").split()) for a in CONTENT_ATTRIBUTES)
        title, description = (v if not v.startswith(("/", "http")) else "" for v in (title, description))
        if title:
            self.emit(title, line)
            if (description or not tag.self_closing) and title[-1] not in LINE_ENDS + "：:":
                self.label = title
        if description:
            self.emit(description, line)
        if tag.self_closing:
            self.label = None

    def _html(self, tag: Tag, line: int) -> None:
        name = tag.name.lower()
        if name in _BLOCK_HTML:
            self.end_line()
        if tag.closing:
            self._close_links(name)
        elif name in _RAW_HTML:
            self.warn(line, "script_or_style", f"the body of <{name}> is not page text: not indexed")
            if not tag.self_closing:
                self.skip = (tag.name, 1, line)
        elif name == "a" and tag.attrs.get("href") and not tag.self_closing:
            self._open_link("a", tag.attrs["href"])

    def _substitute(self, tag: Tag, line: int) -> None:
        """Put the components file's text where the component stands."""
        video = self.components.video_id(tag) if tag.name in ("YouTube", "VideoWatch") else ""
        if tag.name == "YouTube" and video:
            self.record(Attachment("youtube", video))
        if tag.name == "VideoWatch" and tag.attrs.get("slug"):
            self.record(Attachment("videowatch", tag.attrs["slug"]))
            if video:
                self.record(Attachment("youtube", video))
        found = self.components.text_for(tag)
        if found is None:
            where = self.components.file or "a components file for this language"
            which = f"<{tag.name} {_attrs(tag)}/>" if _attrs(tag) else tag.written()
            self.warn(line, "component_without_text", f"{which} has no text in {where}: nothing of it is indexed")
            return
        # each line where the component stands: a video's title, or one item of its list
        # (「EigenLayer (再質押平台)：…」, named by what comes before the ：)
        # its links go with its lines: one each when there are as many (a list's 「造訪 …」), else
        # every link with every line (a video's page and its YouTube address)
        links = tuple(found.links)
        paired = len(links) == len(found.lines)
        for i, text in enumerate(found.lines):
            own = (links[i],) if paired else links
            if video:
                self.emit(text, line, "video", links=own)
            else:
                name = text.split(self.style.label.strip(), 1)[0].strip() if self.style.label.strip() in text else ""
                self.emit(text, line, "item", label=name if len(name) <= 40 else "", links=own)
        if not found.lines:
            for text, url in links:
                self.record(Link(text, url))


def _attrs(tag: Tag) -> str:
    return " ".join(f'{k}="{v}"' for k, v in tag.attrs.items() if k in ("id", "slug"))

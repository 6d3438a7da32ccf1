"""Markdown/MDX pages → :class:`Section` objects.

Each heading carrying an ``{#anchor}`` id starts a section; text before the first heading is
the top-of-page section (anchor ``""``), joined by the front matter's description and summary
points. MDX components are handled by what they carry: ``<Alert>`` bodies are content, text
in ``title``/``description`` attributes is content (an FAQ question, a card), self-closing
widgets are dropped (a YouTube id is kept as an attachment). Tables become one labelled
passage per row. Headings without an id stay inside the current section as a line of text,
since only an id can be linked to (so does a heading repeating an earlier id).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import CorpusError
from .fsutil import files_digest
from .text import LINE_ENDS, anchor_words, tool_files

#: Attributes of MDX components whose value is page text, not configuration.
CONTENT_ATTRIBUTES = ("title", "description")
#: Attributes that identify an embedded video; kept as section attachments.
ATTACHMENT_ATTRIBUTES = {"YouTube": "id", "VideoWatch": "slug"}
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "table", "tr", "h1", "h2", "h3", "h4"}

# Private-use characters mark structure while the page is still one string, so that line
# numbers survive tag removal (a tag is replaced by its text plus the newlines it spanned).
_BREAK = "\ue000"
_ALERT_OPEN = "\ue001"
_ALERT_CLOSE = "\ue002"
_MARK = re.compile("\ue003([a-z]+)\ue005([^\ue004]*)\ue004")  # (kind, value) recorded on the section

_TAG = re.compile(
    r"<(?P<close>/)?(?P<name>[A-Za-z][\w.]*)"
    r"(?P<attrs>(?:\s+[^\s=<>\"'/]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|\{(?:[^{}]|\{[^{}]*\})*\}|[^\s>]+))?)*)"
    r"\s*(?P<self>/)?>"
)
_ATTR = re.compile(r"([^\s=<>\"'/]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|\{((?:[^{}]|\{[^{}]*\})*)\}|([^\s>]+))")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*(?:\{#([^}\s]+)\})?\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_LIST_BULLET = re.compile(r"^\s*[-*+]\s+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$")
_SENTENCE_END = LINE_ENDS


def section_key(source: str, anchor: str) -> str:
    """The one key of a section across the index: ``<file name>#<anchor>``."""
    return f"{source}#{anchor}"


@dataclass(frozen=True)
class Link:
    text: str
    url: str


@dataclass(frozen=True)
class Block:
    """What one line of a section's text is, so that answers can keep its structure.

    ``kind`` is ``paragraph``, ``item`` (of a list), ``alert`` (a note; ``label`` is its title,
    e.g. 建議須知), ``heading`` (a heading without an id), ``row`` (of a table: ``table`` indexes
    the section's ``tables`` headers, ``cells`` are aligned with them) or ``video``."""

    kind: str
    table: int = -1
    cells: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class Section:
    """One linkable part of a page: a heading with an ``{#anchor}`` and the text under it."""

    source: str  # file name inside the corpus folder
    anchor: str  # "" for the top of the page
    title: str
    level: int  # 1 for the top of the page, 2 for ##, …
    path: tuple[str, ...]  # heading path from the page title down to this section
    text: str  # the section's content as plain text, blocks separated by "\n"
    url: str
    lines: tuple[int, int]  # 1-based first and last line in the source file
    page_url: str = ""
    lang: str = ""
    links: tuple[Link, ...] = ()
    attachments: tuple[tuple[str, str], ...] = ()  # e.g. ("youtube", "rOJo7VwPh7I")
    blocks: tuple[Block, ...] = ()  # one per line of ``text``
    tables: tuple[tuple[str, ...], ...] = ()  # each table's header cells

    def line_spans(self) -> list[tuple[int, int, Block]]:
        """``(start, end, block)`` of each line of ``text``."""
        out, start = [], 0
        for i, line in enumerate(self.text.split("\n")):
            block = self.blocks[i] if i < len(self.blocks) else Block("paragraph")
            out.append((start, start + len(line), block))
            start += len(line) + 1
        return out

    @property
    def key(self) -> str:
        return section_key(self.source, self.anchor)

    @property
    def english_name(self) -> str:
        """The section's name in English words: its anchor (ethereum.org anchors are the English
        headings, ``what-are-the-risks-of-restaking``), or the page's slug for the top of the page."""
        return anchor_words(self.anchor or self.page_url.rstrip("/").rsplit("/", 1)[-1] or self.title)


@dataclass
class _Draft:
    anchor: str
    title: str
    level: int
    path: tuple[str, ...]
    first_line: int
    blocks: list[str] = field(default_factory=list)
    kinds: list[Block] = field(default_factory=list)  # parallel to blocks
    tables: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, text: str, block: Block) -> None:
        self.blocks.append(text)
        self.kinds.append(block)

    last_line: int = 0
    links: list[Link] = field(default_factory=list)
    attachments: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CorpusConfig:
    base_url: str = "https://ethereum.org"
    url_template: str = "{base_url}/{lang}/{slug}/"
    pages: dict[str, dict[str, str]] = field(default_factory=dict)

    def page_url(self, file_name: str, lang: str) -> str:
        page = self.pages.get(file_name, {})
        if "url" in page:
            return page["url"]
        slug = page.get("slug", file_name.split(".", 1)[0])
        return self.url_template.format(base_url=self.base_url.rstrip("/"), lang=lang, slug=slug)


def load_corpus_config(folder: Path) -> CorpusConfig:
    """Read ``corpus.toml`` (the one place that says how files map to public URLs)."""
    path = folder / "corpus.toml"
    if not path.exists():
        return CorpusConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: not valid TOML ({exc}); fix the file and retry") from None
    return CorpusConfig(
        base_url=data.get("base_url", CorpusConfig.base_url),
        url_template=data.get("url_template", CorpusConfig.url_template),
        pages=data.get("pages", {}),
    )


def corpus_files(folder: Path) -> list[Path]:
    """The markdown pages of a corpus folder, in a stable order."""
    if not folder.is_dir():
        raise CorpusError(f"corpus folder {folder} does not exist; pass --corpus or set RESTAKE_QA_CORPUS_DIR")
    files = sorted(p for p in folder.iterdir() if p.suffix in {".md", ".mdx"} and p.is_file())
    if not files:
        raise CorpusError(f"corpus folder {folder} holds no .md or .mdx page")
    return files


def corpus_hash(folder: Path) -> str:
    """sha256 over the pages, corpus.toml, the glossary and synonyms (they shape the lexical
    index): what a build depends on."""
    return files_digest([*corpus_files(folder), folder / "corpus.toml", *tool_files(folder)])


def load_corpus(folder: Path) -> list[Section]:
    """Parse every page of ``folder`` into sections, raising :class:`CorpusError` on bad input."""
    config = load_corpus_config(folder)
    sections: list[Section] = []
    for path in corpus_files(folder):
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8 and rebuild") from None
        sections.extend(parse_page(text, source=path.name, config=config))
    return sections


def parse_page(text: str, source: str, config: CorpusConfig | None = None) -> list[Section]:
    """Parse one markdown/MDX page into its sections."""
    config = config or CorpusConfig()
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError(f"{source}: the file is empty; add content or remove it from the corpus")
    meta, body, body_line = _split_front_matter(text, source)
    lang = str(meta.get("lang") or "").strip()
    if not lang:
        raise CorpusError(f"{source}: front matter has no `lang`; add e.g. `lang: zh-tw`")
    page_url = config.page_url(source, lang)
    page_title = str(meta.get("title") or Path(source).stem).strip()

    top = _Draft(anchor="", title=page_title, level=1, path=(page_title,), first_line=1)
    for value in _summary(meta):
        if value not in top.blocks:
            top.add(value, Block("paragraph"))
    top.last_line = max(body_line - 1, 1)

    drafts = [top]
    current = top
    stack: list[tuple[int, str]] = []  # (level, title) of the anchored headings above
    in_alert = 0
    pending_label: str | None = None
    table: list[tuple[int, list[str]]] = []

    def flush_table() -> None:
        if table:
            _table_rows(table, current)
            table.clear()

    body = _replace_tags(body)
    for offset, raw_line in enumerate(body.split("\n")):
        line_no = body_line + offset
        for piece in raw_line.split(_BREAK):
            opened = piece.count(_ALERT_OPEN)
            closed = piece.count(_ALERT_CLOSE)
            piece = piece.replace(_ALERT_OPEN, "").replace(_ALERT_CLOSE, "")
            for kind, value in _MARK.findall(piece):
                if kind == "link":
                    current.links.append(Link(text="", url=value))
                else:
                    current.attachments.append((kind, value))
            piece = _MARK.sub("", piece)
            in_alert += opened
            stripped = piece.strip()
            if stripped.startswith("|"):
                table.append((line_no, _split_row(stripped)))
                current.last_line = line_no
            else:
                flush_table()
            heading = _HEADING.match(stripped) if not stripped.startswith("|") else None
            # A repeated id cannot be linked to (the browser finds the first one): such a
            # heading stays inside the section above it, like a heading without an id.
            anchored = heading is not None and heading.group(3) and all(d.anchor != heading.group(3) for d in drafts)
            if heading is not None and anchored:
                pending_label = None
                level = len(heading.group(1))
                title = _inline(heading.group(2), current)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                path = (page_title, *(t for _, t in stack), title)
                stack.append((level, title))
                current = _Draft(
                    anchor=heading.group(3),
                    title=title,
                    level=level,
                    path=path,
                    first_line=line_no,
                    last_line=line_no,
                )
                drafts.append(current)
            elif stripped and not stripped.startswith("|"):
                kind = (
                    "heading"
                    if heading
                    else "alert"
                    if in_alert
                    else "item"
                    if _LIST_ITEM.match(stripped)
                    else "paragraph"
                )
                if heading:  # a heading without an id: a line of text in the section
                    stripped = heading.group(2)
                block = _inline(_LIST_BULLET.sub("", stripped), current)
                if block:
                    if pending_label is not None:
                        current.blocks[-1] = f"{pending_label}：{block}"
                        current.kinds[-1] = Block("alert", label=pending_label)
                        block = current.blocks[-1]
                        pending_label = None
                    else:
                        current.add(block, Block(kind))
                    # A short line with no sentence end inside an alert is its title
                    # (「建議須知」): it introduces the next line.
                    if in_alert and len(block) <= 16 and block[-1] not in _SENTENCE_END + "：:":
                        pending_label = block
                    current.last_line = line_no
            in_alert = max(in_alert - closed, 0)
            if closed:
                pending_label = None
    flush_table()

    _name_videos(drafts)
    sections = []
    for d in drafts:
        sections.append(
            Section(
                source=source,
                anchor=d.anchor,
                title=d.title,
                level=d.level,
                path=d.path,
                text="\n".join(d.blocks),
                blocks=tuple(d.kinds),
                tables=tuple(d.tables),
                url=page_url + (f"#{d.anchor}" if d.anchor else ""),
                lines=(d.first_line, max(d.last_line, d.first_line)),
                page_url=page_url,
                lang=lang,
                links=tuple(d.links),
                attachments=tuple(d.attachments),
            )
        )
    return sections


def _name_videos(drafts: list[_Draft]) -> None:
    """A section holding only a video gets the video's title, where the page links to it."""
    titles = {link.url: link.text for d in drafts for link in d.links if link.text and "youtu" in link.url}
    for d in drafts:
        for kind, value in d.attachments:
            title = next((t for url, t in titles.items() if value in url), None)
            if kind == "youtube" and title and not d.blocks:
                d.add(f"影片：{title}", Block("video"))


def _split_front_matter(text: str, source: str) -> tuple[dict, str, int]:
    if not text.startswith("---\n"):
        return {}, text, 1
    end = text.find("\n---", 4)
    if end < 0:
        raise CorpusError(f"{source}: front matter opened with --- is never closed; add a closing --- line")
    raw = text[4:end]
    try:
        meta = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        raise CorpusError(f"{source}: front matter is not valid YAML{where}; fix it and rebuild") from None
    if not isinstance(meta, dict):
        raise CorpusError(f"{source}: front matter must be `key: value` lines")
    rest_start = text.find("\n", end + 4)
    rest_start = len(text) if rest_start < 0 else rest_start + 1
    body_line = text[:rest_start].count("\n") + 1
    return meta, text[rest_start:], body_line


def _summary(meta: dict) -> list[str]:
    values = []
    if meta.get("description"):
        values.append(str(meta["description"]).strip())
    points = meta.get("summaryPoints")
    if isinstance(points, list):
        values.extend(str(p).strip() for p in points if p)
    numbered = sorted((k for k in meta if re.fullmatch(r"summaryPoint\d+", str(k))), key=lambda k: int(k[12:]))
    values.extend(str(meta[k]).strip() for k in numbered if meta[k])
    return values


def _replace_tags(body: str) -> str:
    """Replace HTML/MDX tags by their content-bearing text, keeping line numbers.

    What a tag carries for the section but not for its text (a link target, a video id) is
    left as a marker, recorded on whichever section the line walk is in when it meets it.
    """

    def mark(kind: str, value: str) -> str:
        return f"\ue003{kind}\ue005{value}\ue004"

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        attrs = {
            m.group(1): next(g for g in m.groups()[1:] if g is not None)
            for m in _ATTR.finditer(match.group("attrs") or "")
        }
        out = ""
        kind = ATTACHMENT_ATTRIBUTES.get(name)
        if kind and attrs.get(kind):
            out += mark(name.lower(), attrs[kind])
        target = attrs.get("href") or attrs.get("to")
        if target and name in {"a", "ButtonLink", "Link"}:
            out += mark("link", target)
        newlines = "\n" * match.group(0).count("\n")
        if name == "Alert":
            return out + (_ALERT_CLOSE if match.group("close") else _ALERT_OPEN) + newlines
        texts = [
            " ".join(attrs[a].split())
            for a in CONTENT_ATTRIBUTES
            if not match.group("close") and attrs.get(a) and not attrs[a].startswith(("/", "http"))
        ]
        if texts:
            return out + _BREAK + _BREAK.join(texts) + _BREAK + newlines
        if name.lower() in _BLOCK_TAGS or name[0].isupper():
            return out + _BREAK + newlines
        return out + newlines

    return _TAG.sub(replace, body)


def _inline(text: str, draft: _Draft) -> str:
    """Markdown inline syntax → plain text; link targets are recorded on the section."""

    def link(match: re.Match[str]) -> str:
        if match.group(0).startswith("!"):
            return ""
        draft.links.append(Link(text=match.group(1), url=match.group(2)))
        return match.group(1)

    text = _LINK.sub(link, text)
    text = _EMPHASIS.sub("", text)
    return " ".join(text.split())


def _split_row(line: str) -> list[str]:
    cells = line.strip().strip("|").split("|")
    return [c.strip() for c in cells]


def _table_rows(rows: list[tuple[int, list[str]]], draft: _Draft) -> None:
    """One passage per data row: 「header：cell；header：cell」, spacer rows skipped."""
    header_line, header = rows[0]
    header = [_inline(h, draft) for h in header]
    draft.tables.append(tuple(header))
    table = len(draft.tables) - 1
    for line_no, cells in rows[1:]:
        if _TABLE_SEPARATOR.match("|" + "|".join(cells) + "|"):
            continue
        cells = [_inline(c, draft) for c in cells]
        if not any(cells):
            continue
        row = ""
        for name, cell in zip(header, cells):
            if not cell:
                continue
            if row:
                row += " " if row[-1] in _SENTENCE_END else "；"
            row += f"{name}：{cell}" if name else cell
        draft.add(row, Block("row", table=table, cells=tuple(cells[: len(header)])))
        draft.last_line = line_no


# a page's parse with its warnings (for the console's preview) -----------------------------------
#: MDX components this parser knows (their text is content, or they are widgets it drops).
KNOWN_COMPONENTS = {"Alert", "AlertContent", "AlertDescription", "AlertEmoji", "AlertTitle", "ButtonLink", "Link"}
KNOWN_COMPONENTS |= {*ATTACHMENT_ATTRIBUTES, "TabbedSection", "RestakingList", "Divider", "CardGrid", "ExpandableCard"}
_COMPONENT = re.compile(r"<([A-Z][\w.]*)")


@dataclass(frozen=True)
class CorpusWarning:
    source: str
    line: int
    kind: str  # unknown_component, duplicate_anchor, heading_without_anchor, empty_section, …
    message: str


@dataclass(frozen=True)
class PageParse:
    sections: list[Section]
    warnings: list[CorpusWarning]


def parse_page_report(text: str, source: str, config: CorpusConfig | None = None) -> PageParse:
    """:func:`parse_page` and what a person should look at: unknown components, headings
    without or with a repeated ``{#anchor}``, sections without text."""
    sections = parse_page(text, source, config)
    warnings: list[CorpusWarning] = []
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    start = next((i + 1 for i in range(1, len(lines)) if lines[i].startswith("---")), 0) if lines[0] == "---" else 0
    seen: set[str] = set()
    fenced = False
    for n, line in enumerate(lines[start:], start + 1):
        fenced = fenced != line.lstrip().startswith("```")
        heading = None if fenced else _HEADING.match(line.strip())
        if heading:
            anchor, title = heading.group(3), heading.group(2)
            kind = "duplicate_anchor" if anchor in seen else "" if anchor else "heading_without_anchor"
            if kind:
                what = f"{{#{anchor}}} is used twice" if anchor else f"heading {title!r} has no {{#anchor}}"
                warnings.append(CorpusWarning(source, n, kind, what + "; it cannot be linked to"))
            seen.add(anchor or "")
        for name in _COMPONENT.findall(line):
            if name not in KNOWN_COMPONENTS:
                message = f"<{name}> is an unknown component; its content is not indexed"
                warnings.append(CorpusWarning(source, n, "unknown_component", message))
    for s in sections:
        if s.anchor and not s.text.strip():
            warnings.append(CorpusWarning(source, s.lines[0], "empty_section", f"section {s.anchor!r} has no text"))
    return PageParse(sections, sorted(warnings, key=lambda w: w.line))

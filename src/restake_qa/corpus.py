"""Markdown/MDX pages → :class:`Section` objects, and the warnings an operator should see.

Each heading carrying an ``{#anchor}`` id starts a section; text before the first heading is
the top-of-page section (anchor ``""``), joined by the front matter's description and summary
points. The page is parsed by markdown-it-py with MDX's additions (``mdx.py``); what each
token and component means for the text is decided in ``mdx_text.py``, and the text a component
stands for comes from ``components.<lang>.toml`` (``components.py``). Headings without an id
stay inside the current section as a line of text, since only an id can be linked to (so does
a heading repeating an earlier id); both are warned about.

A page may have language versions (``corpus.toml``'s ``[page.<id>]``): each version's
sections carry the page id, so that sections align by ``(page, anchor)`` (``alignment.py``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .components import Components, component_files, load_components
from .errors import CorpusError
from .fsutil import files_digest
from .mdx_text import Attachment, Heading, Line, Style, page_events
from .sections import Block, Link, Section, section_key
from .text import tool_files

__all__ = ["Block", "Link", "Section", "section_key"]  # the section model (sections.py), as parsed here

#: Largest page accepted, in bytes (the ``max_page_bytes`` setting's default).
DEFAULT_MAX_PAGE_BYTES = 5_000_000
#: What a :class:`CorpusWarning` can be about.
WARNING_KINDS = (
    "unknown_component",
    "component_without_text",
    "mdx_syntax",
    "script_or_style",
    "duplicate_anchor",
    "heading_without_anchor",
    "empty_section",
)


@dataclass(frozen=True)
class CorpusWarning:
    """Something of a page that is not indexed, or not as the author may think."""

    source: str
    line: int
    kind: str  # one of WARNING_KINDS
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass(frozen=True)
class PageParse:
    """One page: its sections and what the parser warns about (in line order)."""

    sections: list[Section]
    warnings: list[CorpusWarning]


@dataclass(frozen=True)
class CorpusParse:
    """A corpus folder: every page's sections and warnings."""

    sections: list[Section]
    warnings: list[CorpusWarning]


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
    last_line: int = 0
    links: list[Link] = field(default_factory=list)
    attachments: list[tuple[str, str]] = field(default_factory=list)
    inline: list[int] = field(default_factory=list)  # links met since the last line: that line's own


@dataclass(frozen=True)
class CorpusConfig:
    """``corpus.toml`` (URLs, language versions) and the components files of a corpus folder."""

    base_url: str = "https://ethereum.org"
    url_template: str = "{base_url}/{lang}/{slug}/"
    pages: dict[str, dict[str, str]] = field(default_factory=dict)  # per file: slug or url
    versions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # page id → its files
    slugs: dict[str, str] = field(default_factory=dict)  # page id → slug
    components: dict[str, Components] = field(default_factory=dict)  # by language

    def page_id(self, file_name: str) -> str:
        """The page a file is a version of: as declared, else its name up to the first dot."""
        return next((page for page, files in self.versions.items() if file_name in files), file_name.split(".", 1)[0])

    def page_url(self, file_name: str, lang: str) -> str:
        page = self.pages.get(file_name, {})
        if "url" in page:
            return page["url"]
        page_id = self.page_id(file_name)
        slug = page.get("slug", self.slugs.get(page_id, file_name.split(".", 1)[0]))
        return self.url_template.format(base_url=self.base_url.rstrip("/"), lang=lang, slug=slug)

    def in_page_order(self, files: list[Path]) -> list[Path]:
        """``files`` with each page's versions together, in the order corpus.toml lists them
        (the first is the page's main version), at the place of the page's first file."""
        rank = {name: i for files in self.versions.values() for i, name in enumerate(files)}
        first: dict[str, int] = {}
        for i, path in enumerate(files):
            first.setdefault(self.page_id(path.name), i)
        return sorted(files, key=lambda p: (first[self.page_id(p.name)], rank.get(p.name, 0), p.name))

    @property
    def component_names(self) -> frozenset[str]:
        """Components some components file speaks for (each language is expected to)."""
        return frozenset(name for c in self.components.values() for name in c.by_name)


def load_corpus_config(folder: Path) -> CorpusConfig:
    """Read ``corpus.toml`` and the components files (how files map to pages and URLs)."""
    path = folder / "corpus.toml"
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CorpusError(f"{path}: not valid TOML ({exc}); fix the file and retry") from None
    versions: dict[str, tuple[str, ...]] = {}
    slugs: dict[str, str] = {}
    declared: dict[str, str] = {}
    for page_id, entry in (data.get("page") or {}).items():
        files = entry.get("files") if isinstance(entry, dict) else None
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            raise CorpusError(f"corpus.toml: [page.{page_id}] needs `files`, the list of its language versions")
        for name in files:
            if name in declared:
                raise CorpusError(f"corpus.toml: {name} is listed in [page.{declared[name]}] and [page.{page_id}]")
            if folder.is_dir() and not (folder / name).is_file():
                raise CorpusError(f"corpus.toml: [page.{page_id}] lists {name}, which is not in {folder}")
            declared[name] = page_id
        versions[page_id] = tuple(files)
        slugs[page_id] = str(entry.get("slug") or page_id)
    return CorpusConfig(
        base_url=data.get("base_url", CorpusConfig.base_url),
        url_template=data.get("url_template", CorpusConfig.url_template),
        pages=data.get("pages", {}),
        versions=versions,
        slugs=slugs,
        components=load_components(folder) if folder.is_dir() else {},
    )


def corpus_files(folder: Path) -> list[Path]:
    """The markdown pages of a corpus folder, in a stable order."""
    if not folder.is_dir():
        raise CorpusError(f"corpus folder {folder} does not exist; pass --corpus or set RESTAKE_QA_CORPUS_DIR")
    files = sorted(p for p in folder.iterdir() if p.suffix in {".md", ".mdx"} and p.is_file())
    if not files:
        raise CorpusError(f"corpus folder {folder} holds no .md or .mdx page")
    return files


def build_inputs(folder: Path) -> list[Path]:
    """The files a build depends on, in hashing order: the pages, corpus.toml, the components
    files, the glossary and synonyms (they shape the sections and the lexical index)."""
    return [*corpus_files(folder), folder / "corpus.toml", *component_files(folder), *tool_files(folder)]


def corpus_hash(folder: Path) -> str:
    """sha256 over :func:`build_inputs`: what a build depends on."""
    return files_digest(build_inputs(folder))


def load_corpus_report(folder: Path, max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES) -> CorpusParse:
    """Parse every page of ``folder``: sections and warnings; :class:`CorpusError` on bad input."""
    config = load_corpus_config(folder)
    files = config.in_page_order(corpus_files(folder))
    sections: list[Section] = []
    warnings: list[CorpusWarning] = []
    versions: dict[tuple[str, str], str] = {}
    for path in files:
        _check_size(path.name, path.stat().st_size, max_page_bytes)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8 and rebuild") from None
        page = parse_page_report(text, source=path.name, config=config, max_page_bytes=max_page_bytes)
        if page.sections:
            top = page.sections[0]
            other = versions.setdefault((top.page, top.lang), path.name)
            if other != path.name:
                raise CorpusError(
                    f"{other} and {path.name} are both the `{top.lang}` version of page {top.page}; "
                    "change one's `lang` or declare it as another page in corpus.toml"
                )
        sections.extend(page.sections)
        warnings.extend(page.warnings)
    return CorpusParse(sections, warnings)


def load_corpus(folder: Path, max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES) -> list[Section]:
    """Parse every page of ``folder`` into sections, raising :class:`CorpusError` on bad input."""
    return load_corpus_report(folder, max_page_bytes).sections


def parse_page(
    text: str, source: str, config: CorpusConfig | None = None, max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
) -> list[Section]:
    """Parse one markdown/MDX page into its sections."""
    return parse_page_report(text, source, config, max_page_bytes).sections


def parse_page_report(
    text: str, source: str, config: CorpusConfig | None = None, max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
) -> PageParse:
    """Parse one markdown/MDX page: its sections and the warnings about it (file and line).

    ``source`` is the file name (it names the page in sections and messages); ``config`` says
    the page's URL, its page id and the text of its components (default: none)."""
    _check_size(source, len(text.encode("utf-8", errors="replace")), max_page_bytes)
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
    warnings: list[CorpusWarning] = []

    def warn(line: int, kind: str, message: str) -> None:
        warnings.append(CorpusWarning(source, line, kind, message))

    top = _Draft(anchor="", title=page_title, level=1, path=(page_title,), first_line=1)
    for value in _summary(meta):
        if value not in top.blocks:
            top.blocks.append(value)
            top.kinds.append(Block("paragraph"))
    top.last_line = max(body_line - 1, 1)
    drafts, current = [top], top
    first_seen: dict[str, int] = {}
    stack: list[tuple[int, str]] = []  # (level, title) of the anchored headings above
    components = config.components.get(lang, Components())
    events = page_events(
        body,
        components,
        config.component_names,
        Style.for_lang(lang),
        lambda line, kind, message: warn(body_line + line, kind, message),
    )
    for event in events:
        if isinstance(event, Heading):
            line = body_line + event.line
            if event.anchor and event.anchor not in first_seen:
                first_seen[event.anchor] = line
                while stack and stack[-1][0] >= event.level:
                    stack.pop()
                path = (page_title, *(t for _, t in stack), event.title)
                stack.append((event.level, event.title))
                current = _Draft(event.anchor, event.title, event.level, path, line, last_line=line)
                drafts.append(current)
                continue
            # A heading without an id, or repeating one (the browser finds the first), cannot be
            # linked to: it stays inside the section above it as a line of text.
            if event.anchor:
                message = f"{{#{event.anchor}}} repeats the anchor of line {first_seen[event.anchor]}; this heading stays inside section #{current.anchor} as text"
                warn(line, "duplicate_anchor", message)
            else:
                message = f"heading 「{event.title}」 has no {{#anchor}}; it stays inside section #{current.anchor} as text (add an id to make it linkable)"
                warn(line, "heading_without_anchor", message)
            if event.title:
                current.blocks.append(event.title)
                current.kinds.append(Block("heading"))
                current.last_line = max(current.last_line, line)
        elif isinstance(event, Link):
            current.links.append(event)
            current.inline.append(len(current.links) - 1)
        elif isinstance(event, Attachment):
            current.attachments.append((event.kind, event.value))
        else:
            current.blocks.append(event.text)
            block = _block(current, event)
            if event.links:  # a component's line and its links (「造訪 EigenLayer」, a video's address)
                for link in event.links:
                    if Link(*link) not in current.links:
                        current.links.append(Link(*link))
                block = replace(block, links=tuple(current.links.index(Link(*link)) for link in event.links))
            else:  # the line's inline links (a reading list's 「[Ledger Academy - …](https://…)」)
                own = tuple(i for i in current.inline if current.links[i].text and current.links[i].text in event.text)
                block = replace(block, links=own) if own else block
            current.inline.clear()
            current.kinds.append(block)
            current.last_line = max(current.last_line, body_line + event.line)

    page_id = config.page_id(source)
    sections = []
    for i, d in enumerate(drafts):
        has_subsections = i + 1 < len(drafts) and drafts[i + 1].level > d.level
        if not d.blocks and not has_subsections:
            name = f"#{d.anchor}" if d.anchor else "the top of the page"
            warn(
                d.first_line,
                "empty_section",
                f"{name} (「{d.title}」) has no text to index; nothing in it can be found",
            )
        sections.append(
            Section(
                source=source,
                anchor=d.anchor,
                title=d.title,
                level=d.level,
                path=d.path,
                text="\n".join(d.blocks),
                url=page_url + (f"#{d.anchor}" if d.anchor else ""),
                lines=(d.first_line, max(d.last_line, d.first_line)),
                page_url=page_url,
                lang=lang,
                links=tuple(d.links),
                attachments=tuple(d.attachments),
                page=page_id,
                blocks=tuple(d.kinds),
                tables=tuple(d.tables),
            )
        )
    warnings.sort(key=lambda w: w.line)
    return PageParse(sections, warnings)


def _block(draft: _Draft, event: Line) -> Block:
    """The block of a line of text; a table row joins its table (a new one when the header
    changes or the previous line was not a row of it)."""
    if event.kind != "row":
        return Block(event.kind, label=event.label)
    previous = draft.kinds[-1] if draft.kinds else None  # the line before this one
    if previous is None or previous.kind != "row" or draft.tables[previous.table] != event.header:
        draft.tables.append(event.header)
    return Block("row", table=len(draft.tables) - 1, cells=event.cells)


def _check_size(source: str, size: int, limit: int) -> None:
    if size > limit:
        raise CorpusError(
            f"{source}: {size:,} bytes is over the page size limit of {limit:,} bytes "
            "(max_page_bytes); split the page or raise RESTAKE_QA_MAX_PAGE_BYTES"
        )


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

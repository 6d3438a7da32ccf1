"""What the corpus is made of once parsed: sections of pages, their lines and links.

:mod:`restake_qa.corpus` makes them from the markdown; everything downstream (chunking, the
index, retrieval, answers) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .text import anchor_words


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

    ``kind`` is ``paragraph``, ``item`` (of a list, or of a component's list: ``label`` is its
    name), ``alert`` (a note; ``label`` is its title, e.g. 建議須知), ``heading`` (a heading
    without an id), ``row`` (of a table: ``table`` indexes the section's ``tables`` headers,
    ``cells`` are aligned with them) or ``video``."""

    kind: str
    table: int = -1
    cells: tuple[str, ...] = ()
    label: str = ""
    links: tuple[int, ...] = ()  # the section's links (indexes into Section.links) that go with this line


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
    page: str = ""  # the page id its language versions share: they align by (page, anchor)
    blocks: tuple[Block, ...] = ()  # one per line of ``text``
    tables: tuple[tuple[str, ...], ...] = ()  # each table's header cells

    @property
    def group(self) -> str:
        """The key its language versions share: ``<page>#<anchor>``."""
        return f"{self.page or self.source.split('.', 1)[0]}#{self.anchor}"

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

"""The language versions of a page, aligned section by section.

ethereum.org keeps the English ``{#anchor}`` ids in every translation, so the versions of a
page (``corpus.toml``'s ``[page.<id>]``; each section carries its ``page``) align by
``(page, anchor)``; the top of the page aligns on anchor ``""``. A section may exist in one
version only (the English page's ``other-examples``): it is still a section like any other,
and :attr:`AnchorVersions.missing` names the versions without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .corpus import Section


@dataclass(frozen=True)
class AnchorVersions:
    """One anchor of a page and the section each language version has for it."""

    anchor: str
    sections: dict[str, Section]  # by language
    missing: tuple[str, ...]  # the page's languages without this anchor

    @property
    def partnered(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class PageVersions:
    """A page: its languages (in corpus order) and its anchors aligned across them."""

    page: str
    langs: tuple[str, ...]
    anchors: tuple[AnchorVersions, ...]

    def get(self, anchor: str, lang: str) -> Section | None:
        """The section for ``anchor`` in ``lang``, if that version has one."""
        return next((a.sections.get(lang) for a in self.anchors if a.anchor == anchor), None)

    @property
    def unpartnered(self) -> tuple[AnchorVersions, ...]:
        """The anchors some version of the page lacks."""
        return tuple(a for a in self.anchors if a.missing)


def align_versions(sections: Iterable[Section]) -> list[PageVersions]:
    """Group ``sections`` by page and align each page's versions by anchor.

    Anchors come in the order of the first version (the first file of the page), each anchor
    only another version has placed after the anchor it follows there."""
    by_page: dict[str, dict[str, dict[str, Section]]] = {}
    for s in sections:
        by_page.setdefault(s.page or s.source, {}).setdefault(s.lang, {}).setdefault(s.anchor, s)
    pages = []
    for page, versions in by_page.items():
        order: list[str] = []
        seen: set[str] = set()
        for secs in versions.values():
            previous = None
            for anchor in secs:
                if anchor not in seen:
                    seen.add(anchor)
                    if order and previous == order[-1]:
                        order.append(anchor)
                    else:
                        order.insert(order.index(previous) + 1 if previous is not None else 0, anchor)
                previous = anchor
        langs = tuple(versions)
        anchors = []
        for anchor in order:
            found = {lang: secs[anchor] for lang, secs in versions.items() if anchor in secs}
            anchors.append(AnchorVersions(anchor, found, tuple(lang for lang in langs if lang not in found)))
        pages.append(PageVersions(page, langs, tuple(anchors)))
    return pages


def format_alignment(pages: list[PageVersions]) -> list[str]:
    """Lines for ``restake-qa chunks``: each page's anchors, the versions having each, and
    every anchor without a partner."""
    lines = []
    for p in pages:
        lines.append(f"page {p.page}: {len(p.langs)} version{'s' if len(p.langs) != 1 else ''} ({', '.join(p.langs)})")
        width = max((len(a.anchor or "(top)") for a in p.anchors), default=5)
        for a in p.anchors:
            have = "  ".join(lang if lang in a.sections else "-" * len(lang) for lang in p.langs)
            note = f"   only in {', '.join(a.sections)}: no {', '.join(a.missing)} partner" if a.missing else ""
            lines.append(f"  {(a.anchor or '(top)'):<{width}}  {have}{note}")
        if len(p.langs) > 1:
            lonely = [a.anchor or "(top)" for a in p.unpartnered]
            lines.append(
                f"  {len(lonely)} anchor{'s' if len(lonely) != 1 else ''} without a partner"
                + (f": {', '.join(lonely)}" if lonely else "")
            )
    return lines

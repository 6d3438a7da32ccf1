"""The language versions of a page, aligned section by section.

ethereum.org keeps the English ``{#anchor}`` ids in every translation, so the versions of a
page (``corpus.toml``'s ``[page.<id>]``; each section carries its ``page``) align by
``(page, anchor)``; the top of the page aligns on anchor ``""``. A section may exist in one
version only (the English page's ``other-examples``): it is still a section like any other,
and :attr:`AnchorVersions.missing` names the versions without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


#: The version of a page each asker's language reads first (asker languages are those of
#: :func:`restake_qa.text.detect_language`; versions are the pages' front-matter ``lang``).
OWN_VERSION = {"zh-tw": "zh-tw", "zh-cn": "zh", "en": "en"}
#: The versions each asker's language reads without a note (Chinese in either script).
READABLE = {"en": frozenset({"en"}), "zh-tw": frozenset({"zh-tw", "zh"}), "zh-cn": frozenset({"zh-tw", "zh"})}


def reading_order(asker: str, langs: tuple[str, ...], simplified_source: str = "page") -> tuple[str, ...]:
    """The versions of a page (``langs``, main version first) in the order an asker reads them:
    their own language's version, then the main version, then the rest. With
    ``simplified_source="converted"`` a Simplified asker reads the main version (converted)."""
    own = OWN_VERSION.get(asker, "")
    if asker == "zh-cn" and simplified_source == "converted":
        own = ""
    first = [own] if own in langs else []
    return tuple(dict.fromkeys([*first, *langs[:1], *langs]))


class VersionMap:
    """The language versions of indexed sections, as retrieval and answers need them: every
    version of a section (by :attr:`Section.group`), each page's languages (main version first)
    and the sections that continue another in their own version.

    A section the main version lacks continues, in its own version, the section before it that
    the main version has: the English page's ``other-examples`` holds what the zh-TW page has at
    the end of ``what-are-some-examples-of-restaking``, so answers read both."""

    def __init__(self, sections: Sequence[Section]) -> None:
        self.keys: dict[str, dict[str, str]] = {}  # group → lang → section key
        self._langs: dict[str, tuple[str, ...]] = {}  # page → its languages, main first
        for s in sections:
            self.keys.setdefault(s.group, {}).setdefault(s.lang, s.key)
            page = _page(s.group)
            if s.lang not in self._langs.get(page, ()):
                self._langs[page] = (*self._langs.get(page, ()), s.lang)
        self._continued: dict[str, list[str]] = {}
        before: dict[tuple[str, str], str] = {}
        for s in sections:
            page = _page(s.group)
            if self._langs[page][0] in self.keys[s.group]:
                before[(page, s.lang)] = s.key
            elif (page, s.lang) in before:
                self._continued.setdefault(before[(page, s.lang)], []).append(s.key)

    def langs(self, group: str) -> tuple[str, ...]:
        """The languages of the page ``group`` belongs to, main version first."""
        return self._langs[_page(group)]

    def main_key(self, section: Section) -> str | None:
        """The key of ``section`` in its page's main version, if that version has it."""
        main = self._langs.get(_page(section.group), (section.lang,))[0]
        return self.keys.get(section.group, {}).get(main)

    def continued(self, key: str) -> list[str]:
        """The sections that continue section ``key`` in its own version."""
        return self._continued.get(key, [])


def _page(group: str) -> str:
    return group.rsplit("#", 1)[0]


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

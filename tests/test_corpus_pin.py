"""The markdown-it parser gives the zh-TW page the sections and chunks the regular-expression
parser gave (tests/data/corpus_before.zh-tw.json, written by the parser of d3a265b), except
for the differences listed here, each on purpose:

- link texts: ``<a href>`` and ``<ButtonLink href>`` links now carry the text they wrap
  (the old parser recorded them with an empty text);
- ``advanced``: the old parser named a video-only section after the page's further-reading
  link to the same video; the text of a video now comes from the components file;
- component text (``components.zh-tw.toml``) stands where its component stands: the top
  video's line after 「18 分鐘解釋再質押」, the RestakingList items after the examples' first
  line, the a16z video in ``advanced``; those sections' last lines grow to the component's line;
- a button's label (``<ButtonLink>了解更多</ButtonLink>``) is its link's text only, no longer a line
  of ``how-to-get-started-with-restaking`` (it was quoted as an answer): that section's chunks
  differ and it ends on its last line of text.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from restake_qa.chunking import ChunkerSettings, chunk_section
from restake_qa.components import load_components
from restake_qa.corpus import load_corpus_config, parse_page_report
from restake_qa.mdx import Tag

from helpers import CORPUS, ROOT

PAGE = CORPUS / "restaking.zh-tw.md"
BEFORE = json.loads((ROOT / "tests" / "data" / "corpus_before.zh-tw.json").read_text("utf-8"))["sections"]
LINK_TEXTS_NOW_KNOWN = {
    "what-are-the-risks-of-restaking": {
        "https://vitalik.eth.limo/general/2023/05/21/dont_overload.html": "《不要讓共識超載》"
    },
    "how-to-get-started-with-restaking": {"/staking/": "了解更多"},
}


BUTTON_LABELS = {"how-to-get-started-with-restaking": ("了解更多", 167)}


def _old_text(old) -> str:
    label = BUTTON_LABELS.get(old["anchor"], ("",))[0]
    return "\n".join(line for line in old["text"].split("\n") if line != label)


def _old_lines(old) -> list[int]:
    return [old["lines"][0], BUTTON_LABELS.get(old["anchor"], (None, old["lines"][1]))[1]]


def _parse(with_components: bool):
    config = load_corpus_config(CORPUS)
    if not with_components:
        config = dataclasses.replace(config, components={})
    return parse_page_report(PAGE.read_text("utf-8"), PAGE.name, config)


def _links(section) -> list[dict]:
    return [{"text": link.text, "url": link.url} for link in section.links]


def _old_links(old) -> list[dict]:
    known = LINK_TEXTS_NOW_KNOWN.get(old["anchor"], {})
    return [{"text": known.get(link["url"], link["text"]), "url": link["url"]} for link in old["links"]]


@pytest.fixture(scope="module")
def tools():
    from restake_qa.text import load_text_tools

    return load_text_tools(CORPUS)


def test_without_component_text_every_section_and_chunk_is_as_before(tools):
    parsed = _parse(with_components=False)
    new = {s.anchor: s for s in parsed.sections}
    assert list(new) == [old["anchor"] for old in BEFORE]
    for old in BEFORE:
        s = new[old["anchor"]]
        assert (s.title, s.level, list(s.path), s.url) == (old["title"], old["level"], old["path"], old["url"])
        assert list(s.lines) == _old_lines(old), s.anchor
        assert [list(a) for a in s.attachments] == old["attachments"], s.anchor
        assert _links(s) == _old_links(old), s.anchor
        if s.anchor == "advanced":  # its only text was the further-reading title of its video
            assert s.text == "" and old["text"].startswith("影片：a16z crypto research")
            continue
        assert s.text == _old_text(old), s.anchor
        if s.anchor not in BUTTON_LABELS:
            chunks = [[c.start, c.end, c.tokens] for c in chunk_section(s, tools, ChunkerSettings())]
            assert chunks == old["chunks"], s.anchor
    # what is missing is said, with its line: the components and the now empty section
    assert [(w.kind, w.line) for w in parsed.warnings] == [
        ("component_without_text", 28),
        ("component_without_text", 62),
        ("component_without_text", 110),
        ("empty_section", 175),
        ("component_without_text", 177),
    ]


def test_with_component_text_the_only_changes_are_the_components_lines(tools):
    parsed = _parse(with_components=True)
    assert parsed.warnings == []  # every component of the page has its text (or says it has none)
    zh_tw = load_components(CORPUS)["zh-tw"]
    video = {vid: zh_tw.videos[vid] for vid in ("rOJo7VwPh7I", "-V-fG4J1N_M")}
    products = zh_tw.text_for(Tag("RestakingList"))
    assert products is not None and zh_tw.text_for(Tag("TabbedSection")) is not None

    def insert(lines: list[str], after: str, extra, *, one_passage: bool = True) -> list[str]:
        at = lines.index(after) + 1
        # a video's text is one passage where it stands; a list's entries are one line each
        added = [" ".join(extra.lines)] if one_passage else list(extra.lines)
        return [*lines[:at], *added, *lines[at:]]

    new = {s.anchor: s for s in parsed.sections}
    changed = {
        "": (insert(BEFORE[0]["text"].split("\n"), "18 分鐘解釋再質押", video["rOJo7VwPh7I"]), 28),
        "what-are-some-examples-of-restaking": (
            insert(
                BEFORE[5]["text"].split("\n"),
                "雖然這是一個新穎的想法，但已經出現了一些專案來探索再質押的可能性。",
                products,
                one_passage=False,
            ),
            None,
        ),
        "advanced": ([" ".join(video["-V-fG4J1N_M"].lines)], 177),
    }
    extra_links = {
        "": video["rOJo7VwPh7I"].links,
        "what-are-some-examples-of-restaking": products.links,
        "advanced": video["-V-fG4J1N_M"].links,
    }
    for old in BEFORE:
        s = new[old["anchor"]]
        if s.anchor in changed:
            lines, last_line = changed[s.anchor]
            assert s.text.split("\n") == lines, s.anchor
            assert list(s.lines) == [old["lines"][0], last_line or old["lines"][1]], s.anchor
        else:
            assert s.text == _old_text(old) and list(s.lines) == _old_lines(old), s.anchor
            if s.anchor not in BUTTON_LABELS:
                chunks = [[c.start, c.end, c.tokens] for c in chunk_section(s, tools, ChunkerSettings())]
                assert chunks == old["chunks"], s.anchor
        extra = [{"text": t, "url": u} for t, u in extra_links.get(s.anchor, ())]
        assert _links(s) == _old_links(old) + extra, s.anchor
        assert (s.title, list(s.path), [list(a) for a in s.attachments]) == (
            old["title"],
            old["path"],
            old["attachments"],
        )

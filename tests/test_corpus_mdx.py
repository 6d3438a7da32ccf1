"""MDX on markdown-it: what is indexed, what is left out, and the warning (kind, file, line)
for everything left out. Synthetic pages, so every line number is known."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from restake_qa.cli import main
from restake_qa.components import read_components
from restake_qa.corpus import WARNING_KINDS, CorpusConfig, CorpusError, load_corpus, parse_page, parse_page_report

from helpers import shared_path

PAGE = """---
title: T
lang: en
---
import Foo from "./foo"
export const meta = { secret: "esm secret" }

Intro text.

{/* block comment secret */}

## A {#a}

Visible a. {/* inline comment secret */} More{' '}words.

<Mystery kind="x">
Mystery secret text.

## Hidden heading {#hidden}

<Mystery>nested secret</Mystery>
</Mystery>

<Widget />

<script>
var s = "script secret";
# not a heading
</script>

<style>
.x { color: red } /* style secret */
</style>

Before <script>inline("script secret")</script> after.

## B {#b}

Text b.

## B again {#b}

Dup text.

### No id here

After.

## Empty {#empty}

## C {#c}

<CardGrid>
  <Card
    title="Multi line"
    description="Its description."
    emoji=":x:"
  />
  <Card title="Child card" emoji=":y:">
    The child text.
  </Card>
</CardGrid>

<RestakingList/>

<Alert>
<AlertEmoji text=":bulb:"/>
<AlertContent>
<p><strong>Good to know</strong></p>
<p>Something <a href="https://x.example/">linked</a> here.</p>
</AlertContent>
</Alert>

{someExpression}

Text <Gadget>gadget secret</Gadget> goes on.

<Unclosed>
Tail secret.
"""


@pytest.fixture(scope="module")
def parsed():
    return parse_page_report(PAGE, "page.en.md")


def _line_of(text: str) -> int:
    return next(i for i, line in enumerate(PAGE.split("\n"), 1) if text in line)


def test_nothing_left_out_is_indexed(parsed):
    everything = "\n".join(s.text + s.title for s in parsed.sections)
    assert "secret" not in everything
    assert "not a heading" not in everything and "color" not in everything and "someExpression" not in everything
    assert "hidden" not in [s.anchor for s in parsed.sections]  # a heading inside an unknown component
    assert "Tail" not in everything  # after a component that is never closed


def test_every_left_out_thing_is_warned_with_its_kind_and_line(parsed):
    assert all(w.source == "page.en.md" and w.kind in WARNING_KINDS for w in parsed.warnings)
    assert [(w.kind, w.line) for w in parsed.warnings] == [
        ("mdx_syntax", _line_of("import Foo")),
        ("mdx_syntax", _line_of("block comment secret")),
        ("mdx_syntax", _line_of("inline comment secret")),
        ("unknown_component", _line_of('<Mystery kind="x">')),
        ("unknown_component", _line_of("<Widget />")),
        ("script_or_style", _line_of("<script>")),
        ("script_or_style", _line_of("<style>")),
        ("script_or_style", _line_of("Before <script>")),
        ("duplicate_anchor", _line_of("## B again")),
        ("heading_without_anchor", _line_of("### No id here")),
        ("empty_section", _line_of("## Empty")),
        ("component_without_text", _line_of("<RestakingList/>")),
        ("mdx_syntax", _line_of("{someExpression}")),
        ("unknown_component", _line_of("Text <Gadget>")),
        ("unknown_component", _line_of("<Unclosed>")),
        ("mdx_syntax", _line_of("<Unclosed>")),
    ]
    by_kind = {w.kind: str(w) for w in parsed.warnings}
    assert by_kind["duplicate_anchor"].startswith(f"page.en.md:{_line_of('## B again')}: {{#b}} repeats")
    assert "<Widget/>" in str(parsed.warnings[4]) and "<Mystery>" in str(parsed.warnings[3])
    assert "never closed" in str(parsed.warnings[-1])


def test_what_is_indexed_reads_as_the_page_shows_it(parsed):
    secs = {s.anchor: s for s in parsed.sections}
    assert list(secs) == ["", "a", "b", "empty", "c"]
    assert secs[""].text == "Intro text."
    # an inline comment is dropped, a string expression is its text, an inline script body goes
    assert secs["a"].text == "Visible a. More words.\nBefore after."
    # a repeated id and a missing id keep the heading as a line of the section above
    assert secs["b"].text == "Text b.\nB again\nDup text.\nNo id here\nAfter."
    assert secs["empty"].text == ""
    # a card's title labels its first line; a tag spanning lines; an alert's title joins its
    # text; an unknown component inside a sentence leaves the sentence whole, without itself
    assert secs["c"].text == (
        "Multi line: Its description.\nChild card: The child text.\nGood to know: Something linked here.\nText goes on."
    )
    assert [(link.text, link.url) for link in secs["c"].links] == [("linked", "https://x.example/")]
    assert secs["c"].lines == (_line_of("## C {#c}"), _line_of("Text <Gadget>"))
    assert parsed.sections == parse_page(PAGE, "page.en.md")


def test_component_text_comes_from_the_components_file_of_the_pages_language(tmp_path):
    (tmp_path / "components.en.toml").write_text(
        """
[Gizmo]
lines = ["Gizmo line one.", "Gizmo line two."]
links = [{ text = "Gizmo site", url = "https://gizmo.example/" }]

[TabbedSection]
lines = []

[video.abc123]
slug = "a-video"
lines = ["Video “A video” (Someone)"]
links = [{ text = "A video", url = "https://www.youtube.com/watch?v=abc123" }]
""",
        encoding="utf-8",
    )
    components = read_components(tmp_path / "components.en.toml")
    page = '---\nlang: en\n---\n## V {#v}\n\n<VideoWatch slug="a-video" />\n\n<TabbedSection />\n\n## G {#g}\n\nBefore.\n\n<Gizmo/>\n\n<YouTube id="zzz" />\n'
    parsed = parse_page_report(page, "p.en.md", CorpusConfig(components={"en": components}))
    secs = {s.anchor: s for s in parsed.sections}
    assert secs["v"].text == "Video “A video” (Someone)"
    assert secs["v"].links[0].url == "https://www.youtube.com/watch?v=abc123"
    assert ("videowatch", "a-video") in secs["v"].attachments and ("youtube", "abc123") in secs["v"].attachments
    assert secs["g"].text == "Before.\nGizmo line one.\nGizmo line two."  # one line each, where it stands
    assert secs["g"].links[0].text == "Gizmo site" and secs["g"].lines[1] == 14
    # `lines = []` is a deliberate "no text"; an unknown video is warned, naming file and line
    assert [(w.kind, w.line) for w in parsed.warnings] == [("component_without_text", 16)]
    assert 'p.en.md:16: <YouTube id="zzz"/> has no text in components.en.toml' in str(parsed.warnings[0])
    # another language has no components file: the same components are warned about there
    zh = parse_page_report(page.replace("lang: en", "lang: zh"), "p.zh.md", CorpusConfig(components={"en": components}))
    assert {w.kind for w in zh.warnings} == {"component_without_text", "empty_section"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[RestakingList]\nlines = [1]\n", "list of non-empty strings"),
        ("[RestakingList]\ntext = ['x']\n", "unknown keys"),
        ("[restakinglist]\nlines = ['x']\n", "neither a component"),
        ("[RestakingList]\nlines = ['x']\nlinks = [{ text = 'no url' }]\n", "`links`"),
        ("[RestakingList\n", "not valid TOML"),
    ],
)
def test_a_bad_components_file_is_one_line_naming_it(tmp_path, content, message):
    (tmp_path / "page.zh-tw.md").write_text("---\nlang: zh-tw\n---\ntext\n", encoding="utf-8")
    (tmp_path / "components.zh-tw.toml").write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError) as err:
        load_corpus(tmp_path)
    assert "components.zh-tw.toml" in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_a_page_over_the_size_limit_is_refused_naming_file_and_limit(tmp_path):
    body = "---\nlang: zh-tw\n---\n" + "再質押的風險。\n" * 100
    (tmp_path / "big.zh-tw.md").write_text(body, encoding="utf-8")
    size = len(body.encode())
    with pytest.raises(
        CorpusError, match=rf"big\.zh-tw\.md: {size:,} bytes is over the page size limit of 1,000 bytes"
    ):
        load_corpus(tmp_path, max_page_bytes=1000)
    with pytest.raises(CorpusError, match="over the page size limit"):
        parse_page_report(body, "big.zh-tw.md", max_page_bytes=1000)
    assert load_corpus(tmp_path, max_page_bytes=size)  # at the limit it is accepted
    # the setting reaches the commands: one line, the file and the limit, exit code 1
    result = CliRunner().invoke(main, ["chunks", "--corpus", str(tmp_path)], env={"RESTAKE_QA_MAX_PAGE_BYTES": "1000"})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: big.zh-tw.md: {size:,} bytes is over the page size limit of 1,000 bytes (max_page_bytes); "
        "split the page or raise RESTAKE_QA_MAX_PAGE_BYTES"
    ]


def test_a_generated_multi_megabyte_page_parses_completely():
    """Linear parsing is measured in bench/; here: a 2 MB page of 3,000 sections is parsed whole."""
    parts = ["---\ntitle: Big\nlang: zh-tw\n---\n"]
    for i in range(3000):
        parts.append(
            f"## 第 {i} 節 {{#s{i}}}\n\n再質押者 {i} 把已質押的 ETH 拿去保護 AVS。<Widget{i % 3} />\n\n"
            f'<Alert>\n<p><strong>建議須知</strong></p>\n<p className="mt-2">第 {i} 個提醒。</p>\n</Alert>\n\n'
            "| 風險 | 描述 |\n| --- | --- |\n| 罰沒 | 質押品可能被罰沒。 |\n\n" + "填充文字。" * 60 + "\n\n"
        )
    page = "".join(parts)
    assert len(page.encode()) > 2_000_000
    parsed = parse_page_report(page, "big.zh-tw.md")
    assert len(parsed.sections) == 3001
    last = parsed.sections[-1]
    assert (
        last.anchor == "s2999"
        and "建議須知：第 2999 個提醒。" in last.text
        and "風險：罰沒；描述：質押品可能被罰沒。" in last.text
    )
    assert len(parsed.warnings) == 3000 and parsed.warnings[-1].kind == "unknown_component"


# The real variants of ethereum.org pages in ../shared/data ----------------------------------
def test_every_shared_page_parses_with_well_formed_warnings():
    root = shared_path("ethereum-org")
    pages = sorted(root.rglob("*.md"))
    assert len(pages) >= 12
    for path in pages:
        text = path.read_text(encoding="utf-8")
        parsed = parse_page_report(text, path.name)
        assert parsed.sections, path
        n_lines = text.count("\n") + 1
        for s in parsed.sections:
            assert not any(c in s.text for c in "<>{}"), (path, s.anchor)
            assert 1 <= s.lines[0] <= s.lines[1] <= n_lines, (path, s.anchor)
        for w in parsed.warnings:
            assert w.kind in WARNING_KINDS and 1 <= w.line <= n_lines and w.source == path.name, w


def test_unknown_widgets_on_shared_pages_are_named_with_their_lines():
    path = shared_path("ethereum-org", "zh-tw", "staking-solo.md")
    lines = path.read_text(encoding="utf-8").split("\n")
    parsed = parse_page_report("\n".join(lines), path.name)
    unknown = [w for w in parsed.warnings if w.kind == "unknown_component"]
    assert {w.message.split()[2] for w in unknown} >= {"<StakingComparison/>:", "<QuizWidget/>:"}
    assert all(w.message.split()[2][1:-3] in lines[w.line - 1] for w in unknown)
    headings = [w for w in parsed.warnings if w.kind == "heading_without_anchor"]
    assert [lines[w.line - 1] for w in headings] == ["### 節點工具", "### 金鑰產生器"]


def test_a_link_in_a_heading_belongs_to_the_heading_s_section():
    page = "---\nlang: en\n---\n## A {#a}\n\n[x](/x)\n\n## See [the guide](/guide) {#b}\n\ntext\n"
    secs = {s.anchor: s for s in parse_page(page, "l.en.md")}
    assert secs["b"].title == "See the guide"
    assert [link.url for link in secs["a"].links] == ["/x"] and [link.url for link in secs["b"].links] == ["/guide"]


def test_a_button_s_label_is_its_link_s_text_and_no_line_of_the_page():
    page = (
        "---\nlang: en\n---\n## Start {#start}\n\n<Alert>\n<AlertContent>\n<AlertDescription>\n"
        '  <p><strong>Staking:</strong> how does it work?</p>\n  <ButtonLink href="/staking/">\n    Learn More\n'
        "  </ButtonLink>\n</AlertDescription>\n</AlertContent>\n</Alert>\n"
    )
    start = {s.anchor: s for s in parse_page(page, "b.en.md")}["start"]
    assert "Learn More" not in start.text and "how does it work?" in start.text
    assert [(link.text, link.url) for link in start.links] == [("Learn More", "/staking/")]

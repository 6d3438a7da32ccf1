"""Language versions of a page (corpus.toml), their alignment by anchor, the text of the
page's components in each language, and what build and `restake-qa chunks` say about them."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

from restake_qa.alignment import align_versions
from restake_qa.build import build_index
from restake_qa.cli import main
from restake_qa.corpus import CorpusError, load_corpus, load_corpus_config, load_corpus_report
from restake_qa.embedding import HashEmbedder
from restake_qa.index import load_index

from helpers import CORPUS, make_settings, shared_path

LANGS = ("zh-tw", "en", "zh")


@pytest.fixture(scope="module")
def corpus():
    return load_corpus_report(CORPUS)


def _by(sections, lang: str) -> dict:
    return {s.anchor: s for s in sections if s.lang == lang}


def test_the_page_has_three_language_versions_aligned_by_anchor(corpus):
    assert corpus.warnings == []  # the shipped pages hold nothing the parser cannot index
    [page] = align_versions(corpus.sections)
    assert page.page == "restaking" and page.langs == LANGS  # corpus.toml's order: zh-TW first
    assert {s.page for s in corpus.sections} == {"restaking"}
    zh_tw = _by(corpus.sections, "zh-tw")
    for anchor in zh_tw:  # every zh-TW section has its English and Simplified partner
        assert all(page.get(anchor, lang) is not None for lang in LANGS), anchor
    # the English page's extra section stands alone, and is named as such
    assert [(a.anchor, tuple(a.sections), a.missing) for a in page.unpartnered] == [
        ("other-examples", ("en",), ("zh-tw", "zh"))
    ]
    en = page.get("what-are-the-risks-of-restaking", "en")
    assert en.url == "https://ethereum.org/en/restaking/#what-are-the-risks-of-restaking"
    assert en.title == "What are the risks of restaking?" and en.source == "restaking.en.md"
    assert page.get("", "zh").url == "https://ethereum.org/zh/restaking/" and page.get("", "zh").title == "再质押"
    # the English three-column risks table reads as labelled rows in English
    assert "Risks: Chain reactions; Description: If a restaker gets slashed" in en.text
    assert en.text.split("\n")[3].endswith("Risk level: LOW/MEDIUM")


def test_the_versions_are_the_published_pages():
    for lang in ("en", "zh"):
        published = shared_path("ethereum-org", lang, "restaking.md").read_bytes()
        assert (CORPUS / f"restaking.{lang}.md").read_bytes() == published


def test_an_anchor_missing_in_one_version_still_works_and_is_named(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    zh = corpus / "restaking.zh.md"
    text = zh.read_text(encoding="utf-8")
    zh.write_text(text[: text.index("## 进阶 {#advanced}")], encoding="utf-8")  # the zh page loses its last two
    sections = load_corpus(corpus)
    [page] = align_versions(sections)
    missing = {a.anchor: a.missing for a in page.unpartnered}
    assert missing == {"other-examples": ("zh-tw", "zh"), "advanced": ("zh",), "further-reading": ("zh",)}
    assert page.get("advanced", "zh-tw").text and page.get("advanced", "zh") is None
    result = CliRunner().invoke(main, ["chunks", "--corpus", str(corpus)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "page restaking: 3 versions (zh-tw, en, zh)" in out
    assert "only in zh-tw, en: no zh partner" in out and "only in en: no zh-tw, zh partner" in out
    assert "3 anchors without a partner: other-examples, advanced, further-reading" in out
    assert "§ restaking.zh-tw.md#advanced" in out and "§ restaking.zh.md#advanced" not in out


def test_files_not_declared_are_pages_of_their_own(tmp_path):
    (tmp_path / "other.zh-tw.md").write_text("---\nlang: zh-tw\n---\n## 甲 {#a}\n乙\n", encoding="utf-8")
    (tmp_path / "other.en.md").write_text("---\nlang: en\n---\n## A {#a}\nB\n## C {#c}\nD\n", encoding="utf-8")
    (tmp_path / "lone.en.md").write_text("---\nlang: en\n---\ntext\n", encoding="utf-8")
    pages = {p.page: p for p in align_versions(load_corpus(tmp_path))}
    assert set(pages) == {"other", "lone"}  # the file name up to its first dot
    assert pages["other"].langs == ("en", "zh-tw") and [a.anchor for a in pages["other"].unpartnered] == ["c"]
    assert pages["other"].get("a", "zh-tw").url == "https://ethereum.org/zh-tw/other/#a"


@pytest.mark.parametrize(
    ("toml", "files", "message"),
    [
        ('[page.p]\nfiles = ["p.zh-tw.md", "p.en.md"]\n', ["p.zh-tw.md"], "[page.p] lists p.en.md, which is not in"),
        (
            '[page.p]\nfiles = ["p.zh-tw.md"]\n[page.q]\nfiles = ["p.zh-tw.md"]\n',
            ["p.zh-tw.md"],
            "listed in [page.p] and [page.q]",
        ),
        ("[page.p]\nslug = 'p'\n", ["p.zh-tw.md"], "[page.p] needs `files`"),
        (
            '[page.p]\nfiles = ["p.zh-tw.md", "p2.zh-tw.md"]\n',
            ["p.zh-tw.md", "p2.zh-tw.md"],
            "both the `zh-tw` version of page p",
        ),
    ],
)
def test_bad_version_declarations_are_one_line_errors(tmp_path, toml, files, message):
    (tmp_path / "corpus.toml").write_text(toml, encoding="utf-8")
    for name in files:
        (tmp_path / name).write_text("---\nlang: zh-tw\n---\n內容\n", encoding="utf-8")
    with pytest.raises(CorpusError) as err:
        load_corpus(tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


# Component text ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "anchor", "label", "next_line"),
    [
        ("zh-tw", "what-are-some-examples-of-restaking", "：", "用詞不當警報："),
        ("zh", "what-are-some-examples-of-restaking", "：", "名称误区提示："),
        ("en", "other-examples", ": ", "Misnomer alert: "),
    ],
)
def test_restaking_list_items_are_the_published_strings_in_each_language(corpus, lang, anchor, label, next_line):
    strings = json.loads(
        shared_path("ethereum-org", "intl", lang, "component-restaking-products.json").read_text("utf-8")
    )
    structure = json.loads(shared_path("ethereum-org", "components", "restaking-components.json").read_text("utf-8"))
    section = _by(corpus.sections, lang)[anchor]
    lines = section.text.split("\n")
    rows = []
    for item in structure["RestakingList"]["current"]["items"]:
        rows.append(strings[item["title_key"]] + label + strings[item["description_key"]])
        brand = strings[item["cta"].split("=")[1].rstrip("}")]
        assert (strings["visit-brand"].replace("{brand}", brand), item["href"]) in [
            (k.text, k.url) for k in section.links
        ]
    # the items, in the component's order, are one line each where <RestakingList/> stands: before
    # the alert that follows it on the page; each line is an item block labelled with its title
    at = lines.index(rows[0])
    assert lines[at : at + len(rows)] == rows, (lang, rows)
    assert lines[at + len(rows)].startswith(next_line)
    items = [b for b in section.blocks if b.kind == "item"]
    assert [b.label for b in items[: len(rows)]] == [
        strings[i["title_key"]] for i in structure["RestakingList"]["current"]["items"]
    ]


def test_each_video_has_its_title_and_link_where_it_stands(corpus):
    zh_tw, en, zh = (_by(corpus.sections, lang) for lang in LANGS)
    transcript = shared_path("ethereum-org", "zh-tw", "videos-restaking-explained.md").read_text("utf-8")
    front = yaml.safe_load(transcript.split("---")[1])
    top = zh_tw[""]
    assert front["youtubeId"] == "rOJo7VwPh7I" and ("youtube", "rOJo7VwPh7I") in top.attachments
    video_line = next(line for line in top.text.split("\n") if line.startswith("影片"))
    assert front["title"] in video_line and front["description"] in video_line
    urls = [link.url for link in top.links]
    assert "https://ethereum.org/zh-tw/videos/restaking-explained/" in urls
    assert "https://www.youtube.com/watch?v=rOJo7VwPh7I" in urls
    assert top.text.split("\n")[-2:] == ["18 分鐘解釋再質押", video_line]  # right after the caption
    # the English page's own video, and <VideoWatch slug> on the Simplified page
    assert "Video: Junion - EigenLayer Explained: What is Restaking?" in en[""].text.split("\n")
    assert "https://www.youtube.com/watch?v=5r0SooSQFJg" in [link.url for link in en[""].links]
    assert ("videowatch", "eigenlayer-permissionless-features") in zh["advanced"].attachments
    assert "Sreeram Kannan" in zh["advanced"].text and "Sreeram Kannan" in en["advanced"].text
    assert "https://www.youtube.com/watch?v=-V-fG4J1N_M" in [link.url for link in zh["advanced"].links]
    # the tabs' labels exist in English only: indexed on the English page, silent elsewhere
    assert "A world with restaking; A world without restaking" in en["why-do-we-need-restaking"].text
    assert "world" not in zh_tw["why-do-we-need-restaking"].text


# Build and index -----------------------------------------------------------------------------
def test_build_says_each_warning_and_the_index_keeps_page_and_language(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    en = corpus / "restaking.en.md"
    en.write_text(en.read_text("utf-8").replace("<EigenLayer/>", '<EigenLayer/>\n\n<Sparkle mode="x" />'), "utf-8")
    line = next(i for i, text in enumerate(en.read_text("utf-8").split("\n"), 1) if "<Sparkle" in text)
    settings = make_settings(tmp_path, corpus_dir=str(corpus))
    said: list[str] = []
    embedder = HashEmbedder()
    build_index(corpus, settings.data_path, embedder, settings, progress=said.append)
    assert f"restaking.en.md:{line}: unknown component <Sparkle/>: it is not indexed" in said
    index = load_index(settings.data_path)
    assert {(s.page, s.lang) for s in index.sections} == {("restaking", lang) for lang in LANGS}
    assert index.section_by_key["restaking.en.md#other-examples"].url.endswith("/en/restaking/#other-examples")

    # editing only the English page re-embeds only English texts
    before = embedder.passages_embedded
    en.write_text(en.read_text("utf-8").replace("Picture two worlds", "Imagine two worlds"), "utf-8")
    report = build_index(corpus, settings.data_path, embedder, settings)
    assert report.sections_changed == ("restaking.en.md#why-do-we-need-restaking",)
    assert 0 < embedder.passages_embedded - before <= 4  # the chunk, its sentence(s) — nothing else


def test_chunks_prints_every_warning_with_file_and_line(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    page = corpus / "restaking.zh.md"
    page.write_text(page.read_text("utf-8").replace("<RestakingList/>", "<RestakingList/>\n\n{/* 待翻譯 */}"), "utf-8")
    line = next(i for i, text in enumerate(page.read_text("utf-8").split("\n"), 1) if "待翻譯" in text)
    result = CliRunner().invoke(main, ["chunks", "--corpus", str(corpus)])
    assert result.exit_code == 0, result.output
    assert f"1 warning:\n  restaking.zh.md:{line}: comment {{/* … */}} is not page text: not indexed" in result.stdout
    assert "待翻譯" not in result.stdout.replace(f"restaking.zh.md:{line}", "")


def test_config_lists_versions_in_declared_order():
    config = load_corpus_config(CORPUS)
    assert config.versions == {"restaking": ("restaking.zh-tw.md", "restaking.en.md", "restaking.zh.md")}
    assert [s.source for s in load_corpus(CORPUS)][:1] == ["restaking.zh-tw.md"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "page", "names"),
    [
        ("有哪些再質押平台可以選？", "zh-tw", ("EigenLayer (再質押平台)", "Symbiotic (再質押平台)")),
        ("Which restaking projects does the page list?", "en", ("EigenLayer (Restaking Platform)", "Symbiotic")),
        # the kind named, which a row of the actors' table defines: its instances answer, not that row
        ("which restaking platforms does the page mention?", "en", ("EigenLayer (Restaking Platform)", "Symbiotic")),
        ("頁面提到哪些再質押平台？", "zh-tw", ("EigenLayer (再質押平台)", "Symbiotic (再質押平台)")),
    ],
)
def test_the_platforms_the_page_lists_are_answered_with_their_links(real_engine, question, page, names):
    """Over the real index and model: the platforms <RestakingList/> stands for — text the
    page's markdown does not hold — answer the question, in the asker's version, cited, each
    with its site."""
    answer, _ = real_engine.answer(question)
    assert not answer.refused and answer.layout == "list"
    assert all(any(i.text.startswith(n) for i in answer.items) for n in names), [i.text for i in answer.items]
    cited = {c.n: c for c in answer.citations}
    for item in answer.items:
        c = cited[item.citations[0]]
        assert c.lang == page and c.url.startswith(f"https://ethereum.org/{page}/restaking/#")
        assert c.anchor in ("what-are-some-examples-of-restaking", "other-examples")
    sites = [link["url"] for item in answer.items for link in item.links]
    assert "https://eigenlayer.xyz/" in sites and "https://symbiotic.fi/" in sites


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "page"), [("Is there a video explaining restaking?", "en"), ("有沒有介紹再質押的影片？", "zh-tw")]
)
def test_a_question_for_a_video_gets_its_title_and_link(real_engine, question, page):
    answer, _ = real_engine.answer(question)
    assert not answer.refused
    # the video, or first the line captioning it (「18 分鐘解釋再質押」)
    first = next(i for i in answer.items[:2] if i.kind == "video")
    assert first.text.startswith(("Video", "影片")) and any("youtube.com/watch?v=" in k["url"] for k in first.links)
    citation = next(c for c in answer.citations if c.n == first.citations[0])
    assert citation.lang == page and citation.url.startswith(f"https://ethereum.org/{page}/restaking/")

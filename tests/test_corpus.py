from __future__ import annotations

import pytest

from restake_qa.corpus import CorpusError, load_corpus, load_corpus_config, parse_page

from helpers import CORPUS, shared_path

ANCHORS = [
    "",
    "what-is-restaking",
    "staking-vs-restaking",
    "why-do-we-need-restaking",
    "how-does-restaking-work",
    "what-are-some-examples-of-restaking",
    "how-much-can-i-make-from-restaking",
    "what-are-the-risks-of-restaking",
    "how-to-get-started-with-restaking",
    "advanced",
    "further-reading",
]


@pytest.fixture(scope="module")
def sections():
    """The zh-TW page's sections (the corpus also holds its en and zh versions)."""
    return {s.anchor: s for s in load_corpus(CORPUS) if s.source == "restaking.zh-tw.md"}


def test_real_page_has_exactly_the_intro_and_ten_anchors(sections):
    assert list(sections) == ANCHORS


def test_urls_come_from_corpus_toml_and_front_matter(sections):
    assert sections["what-are-the-risks-of-restaking"].url == (
        "https://ethereum.org/zh-tw/restaking/#what-are-the-risks-of-restaking"
    )
    assert sections[""].url == "https://ethereum.org/zh-tw/restaking/"
    assert load_corpus_config(CORPUS).page_url("other.zh-tw.md", "zh-tw") == "https://ethereum.org/zh-tw/other/"


def test_top_section_holds_title_description_and_intro(sections):
    top = sections[""]
    assert top.title == "再質押" and top.level == 1 and top.path == ("再質押",)
    assert top.text.startswith("使用已質押的 ETH 保護其他去中心化服務")
    # description and summaryPoint1 are the same sentence: kept once
    assert top.text.count("使用已質押的 ETH 保護其他去中心化服務") == 1
    assert "以太坊網路全年無休地保護著數十億美元的價值" in top.text
    assert ("youtube", "rOJo7VwPh7I") in top.attachments


def test_table_rows_are_labelled_by_their_headers(sections):
    risks = sections["what-are-the-risks-of-restaking"].text
    assert "風險：連鎖反應；描述：如果一個再質押者在保護多個 AVS 時被罰沒" in risks
    work = sections["how-does-restaking-work"].text.split("\n")
    rows = [line for line in work if line.startswith("術語：")]
    assert [r.split("；")[0] for r in rows] == [
        "術語：再質押平台",
        "術語：原生再質押者",
        "術語：流動性再質押者",
        "術語：營運者",
        "術語：AVS",
    ]  # the empty spacer rows between them are skipped
    start = sections["how-to-get-started-with-restaking"].text
    assert "🤓 進階使用者：3 按照說明將您的驗證者連接到再質押智能合約。" in start


def test_alert_text_is_kept_with_its_title(sections):
    assert "建議須知：雖然「主動驗證服務」(Actively Validated Services，簡稱 AVS)" in sections["what-is-restaking"].text
    assert (
        "用詞不當警報：有些人會將「再質押」與在 DeFi 中借出和借入 LST 混淆。"
        in sections["what-are-some-examples-of-restaking"].text
    )
    assert (
        "Vitalik 在 2021 年一篇名為 《不要讓共識超載》的部落格文章中警告了再質押的潛在風險。"
        in sections["what-are-the-risks-of-restaking"].text
    )


def test_component_and_html_tags_are_gone(sections):
    for s in sections.values():
        for tag in ("<", ">", "className", "RestakingList", "TabbedSection", "YouTube", "**", "](", "\ue000"):
            assert tag not in s.text, (s.anchor, tag)


def test_links_and_line_spans_are_recorded(sections):
    risks = sections["what-are-the-risks-of-restaking"]
    assert any("dont_overload" in link.url for link in risks.links)
    reading = sections["further-reading"]
    assert len(reading.links) == 8 and reading.links[1].text == "Ledger Academy - 什麼是以太坊再質押？"
    lines = (CORPUS / "restaking.zh-tw.md").read_text(encoding="utf-8").split("\n")
    assert "{#what-are-the-risks-of-restaking}" in lines[risks.lines[0] - 1]
    assert "Vitalik" in "\n".join(lines[risks.lines[0] - 1 : risks.lines[1]])
    # each line knows its own inline links: the reading list's items one each, the risk
    # paragraph the blog post it names, a line without a link none
    for i, (line, block) in enumerate(zip(reading.text.split("\n"), reading.blocks)):
        assert block.links == (i,) and reading.links[i].text in line
    vitalik = next(
        b for line, b in zip(risks.text.split("\n"), risks.blocks) if "Vitalik" in line or "維塔利克" in line
    )
    assert [risks.links[i].url for i in vitalik.links] == [
        link.url for link in risks.links if "dont_overload" in link.url
    ]
    assert not any(b.links for b in sections["what-is-restaking"].blocks)


def test_video_only_section_gets_the_title_the_page_gives_the_video(sections):
    advanced = sections["advanced"]
    assert ("youtube", "-V-fG4J1N_M") in advanced.attachments
    assert "Sreeram Kannan" in advanced.text


def test_heading_path_and_levels():
    page = "---\ntitle: T\nlang: en\n---\n## A {#a}\ntext a\n### B {#b}\ntext b\n#### no id\ntext c\n## C {#c}\n"
    secs = {s.anchor: s for s in parse_page(page, "t.en.md")}
    assert secs["b"].path == ("T", "A", "B") and secs["b"].level == 3
    assert "no id" in secs["b"].text and "text c" in secs["b"].text  # id-less heading stays inside
    assert secs["c"].path == ("T", "C")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"---\ntitle: [unclosed\nlang: zh-tw\n---\nbody\n", "not valid YAML"),
        (b"---\ntitle: x\nlang: zh-tw\nbody without end\n", "never closed"),
        (b"---\ntitle: x\n---\nbody\n", "no `lang`"),
        ("---\nlang: zh-tw\n---\n再質押".encode("big5"), "not UTF-8"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, content, message):
    (tmp_path / "bad.zh-tw.md").write_bytes(content)
    with pytest.raises(CorpusError) as err:
        load_corpus(tmp_path)
    assert "bad.zh-tw.md" in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match="no .md"):
        load_corpus(tmp_path)


# The real variants of ethereum.org pages in ../shared/data ----------------------------------
def _page(*parts: str):
    path = shared_path("ethereum-org", *parts)
    return parse_page(path.read_text(encoding="utf-8"), path.name)


def test_newest_page_quoted_front_matter_summary_points_and_videowatch():
    secs = {s.anchor: s for s in _page("zh-tw", "restaking.md")}
    assert secs[""].title == "再質押"  # quoted YAML
    assert secs[""].text.startswith("使用已質押的 ETH 來保護其他去中心化服務")
    assert ("videowatch", "restaking-explained") in secs[""].attachments
    assert set(ANCHORS) - {""} <= set(secs)


def test_all_versions_parse_without_tags_left():
    pages = ["restaking.md", "history/restaking.v1-e0cae4c9.md", "history/restaking.v2-1488a12b.md"]
    for name in pages:
        for s in _page("zh-tw", name):
            assert "<" not in s.text and ">" not in s.text, (name, s.anchor, s.text)


def test_expandable_card_titles_are_content_and_h4_headings_kept():
    secs = _page("zh-tw", "staking-withdrawals.md")
    faq = next(s for s in secs if s.anchor == "faq")
    assert "提供提款地址後，可以更改為其他提款地址嗎？" in faq.text
    assert "不可以，提供提款憑證的過程是一次性的" in faq.text
    saas = _page("zh-tw", "staking-saas.md")
    assert any("質押即服務供應商" in s.text for s in saas)  # an id-less #### heading
    assert any("你自己的驗證者" in s.text for s in saas)  # a <Card title=…/>


def test_upgrade_status_and_english_page_parse():
    for parts in [
        ("en", "restaking.md"),
        ("zh", "restaking.md"),
        ("zh-tw", "staking-solo.md"),
        ("zh-tw", "staking-dvt.md"),
        ("zh-tw", "pos-rewards-and-penalties.md"),
    ]:
        secs = _page(*parts)
        assert secs and all("<" not in s.text for s in secs), parts

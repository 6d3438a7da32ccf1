"""Answers from the real model and a real index of the real page."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from restake_qa.answer import compose, resolve_question
from restake_qa.cli import main

pytestmark = pytest.mark.slow

TRADITIONAL_ONLY = re.compile(r"[質與這個們險營運獎勵網絡為從會對說時還動]")


@pytest.fixture(scope="module")
def retriever(real_engine):
    return real_engine.snapshot().retriever


def test_answer_sentences_are_page_sentences_each_cited(retriever):
    answer = compose(retriever, "再質押有哪些風險？")
    assert not answer.refused and 1 <= len(answer.sentences) <= 4
    assert answer.citations[0].anchor == "what-are-the-risks-of-restaking"
    index = retriever.index
    for sentence, citation in zip(answer.sentences, answer.citations):
        assert sentence.citations == (citation.n,)
        section = index.section_by_key[f"restaking.zh-tw.md#{citation.anchor}"]
        start, end = citation.span
        assert section.text[start:end] == citation.snippet
        assert citation.url == section.url
        assert {"dense", "lexical", "fused"} <= set(citation.scores)
    assert all(f"[{c.n}]" in answer.text for c in answer.citations)


def test_table_rows_read_as_sentences(retriever):
    answer = compose(retriever, "營運者負責什麼工作？")
    assert answer.citations[0].anchor == "how-does-restaking-work"
    assert any(s.text.startswith("營運者：") for s in answer.sentences)


def test_simplified_question_gets_a_simplified_answer_with_page_snippets(retriever):
    answer = compose(retriever, "再质押有哪些风险？")
    assert answer.language == "zh-cn" and not answer.refused
    assert answer.citations[0].anchor == "what-are-the-risks-of-restaking"
    text = "".join(s.text for s in answer.sentences)
    assert not TRADITIONAL_ONLY.search(text), text
    # quoted from the page's official Simplified version (simplified_source = page), cited to it
    for c in answer.citations:
        section = retriever.index.section_by_key[f"restaking.zh.md#{c.anchor}"]
        assert c.lang == "zh" and c.url == section.url and c.url.startswith("https://ethereum.org/zh/restaking/")
        assert section.text[c.span[0] : c.span[1]] == c.snippet
        assert c.original and c.original["url"].startswith("https://ethereum.org/zh-tw/restaking/#")


def test_english_question_gets_the_english_page_cited_beside_the_zh_tw_section(retriever):
    answer = compose(retriever, "What are the risks of restaking?")
    assert answer.language == "en" and not answer.refused and answer.note is None
    first = answer.citations[0]
    assert first.anchor == "what-are-the-risks-of-restaking" and first.lang == "en"
    assert first.url == "https://ethereum.org/en/restaking/#what-are-the-risks-of-restaking"
    assert first.original == {
        "lang": "zh-tw",
        "title": "再質押的風險是什麼？",
        "url": "https://ethereum.org/zh-tw/restaking/#what-are-the-risks-of-restaking",
    }
    assert not re.search(r"[\u4e00-\u9fff]", answer.text), answer.text  # English sentences only
    for c in answer.citations:
        section = retriever.index.section_by_key[f"restaking.en.md#{c.anchor}"]
        assert section.text[c.span[0] : c.span[1]] == c.snippet


@pytest.mark.parametrize(
    ("question", "language"),
    [("今天天氣如何？", "zh-tw"), ("比特币总量是多少？", "zh-cn"), ("How do I bake sourdough bread?", "en")],
)
def test_out_of_scope_is_refused_politely_with_nearby_sections(retriever, question, language):
    answer = compose(retriever, question)
    assert answer.refused and answer.sentences == () and answer.citations == ()
    assert answer.language == language and answer.message
    assert 1 <= len(answer.suggestions) <= 3
    page = {"zh-tw": "zh-tw", "zh-cn": "zh", "en": "en"}[language]  # the asker's version of the page
    assert all(s["url"].startswith(f"https://ethereum.org/{page}/restaking/") for s in answer.suggestions)
    assert answer.to_dict()["evidence"]["confidence"] < 0  # the refusal rule's decision, with its evidence


def test_a_question_about_a_video_or_an_article_is_not_refused_for_words_the_reading_list_lacks(retriever):
    # 嘉宾 (guest), 出品 (produced by), cite: what one asks about a video or an article
    for question in (
        "进阶那一节放的视频是哪家出品的？嘉宾是谁",
        "is there an article from Cointelegraph or Consensys i can cite?",
        "延伸閱讀總共列了幾篇？想週末一次 K 完",  # no page word but the reading list it asks about
    ):
        answer = compose(retriever, question)
        assert not answer.refused, (question, answer.message)
    # …but a tutorial for farming points is not about the page's reading list
    assert compose(retriever, "Symbiotic 的积分怎么刷？有没有撸毛教程").refused


def test_follow_ups_use_the_conversation(retriever):
    history = [{"question": "什麼是再質押？", "answer": compose(retriever, "什麼是再質押？").text}]
    risks = compose(retriever, "那風險呢？", history=history)
    assert not risks.refused and risks.citations[0].anchor == "what-are-the-risks-of-restaking"
    assert risks.resolved_question and "再質押" in risks.resolved_question
    # asked after another question or on its own, the risks are the page's whole list of them
    assert risks.layout == "list" and len(risks.items) == 4, [i.text for i in risks.items]
    # "and how do I start?" after saying one runs a validator: the advanced steps, after the
    # first (staking as a validator), which that asker has done
    solo = [{"question": "I run my own validator at home (32 ETH, solo). Can I restake it?", "answer": ""}]
    start = compose(retriever, "and how do I start?", history=solo)
    assert start.items[0].text.startswith("2. Compare restaking services"), [i.text for i in start.items]
    wait = compose(retriever, "它要等多久？", history=history)
    assert not wait.refused
    assert any("解綁定期" in c.snippet for c in wait.citations), [c.snippet for c in wait.citations]


def test_resolve_question_keeps_stand_alone_questions(tools):
    history = [{"question": "什麼是再質押？", "answer": ""}]
    assert resolve_question("營運者是什麼？", history, tools) == "營運者是什麼？"
    assert resolve_question("那風險呢？", [], tools) == "那風險呢？"
    assert resolve_question("那風險呢？", history, tools).startswith("再質押")
    # an English message going on from the last one is read with it: who asks carries over
    solo_home = "I run my own validator at home (32 ETH, solo). Can I restake it?"
    assert resolve_question("and how do I start?", [{"question": solo_home, "answer": ""}], tools) == (
        f"{solo_home} and how do I start?"
    )
    # the asker as the subject: about the topic, not the topic's (「流動性再質押者的我能賺多少」)
    assert resolve_question("那我能赚多少？", [{"question": "什么是再质押？", "answer": ""}], tools) == (
        "关于再质押，我能赚多少呢？"
    )
    # a pronoun after the question's own term points at it, not at the conversation's
    solo = "solo staker here, can i restake natively? how do i hook it up"
    assert resolve_question(solo, [{"question": "What is an LRT?", "answer": ""}], tools) == solo
    assert (
        resolve_question("how do i hook it up", [{"question": "What is an LRT?", "answer": ""}], tools)
        != "how do i hook it up"
    )


def test_cli_ask_prints_the_same_answer(real_engine, monkeypatch):
    monkeypatch.setenv("RESTAKE_QA_DATA_DIR", real_engine.settings.data_dir)
    runner = CliRunner()
    result = runner.invoke(main, ["ask", "再質押有哪些風險？", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["citations"][0]["anchor"] == "what-are-the-risks-of-restaking"
    assert body["index_version"] == real_engine.snapshot().index.version
    plain = runner.invoke(main, ["ask", "再質押有哪些風險？"])
    assert (
        plain.exit_code == 0 and "https://ethereum.org/zh-tw/restaking/#what-are-the-risks-of-restaking" in plain.stdout
    )
    # a question written alike in both scripts: Traditional unless --language says otherwise
    alike = [runner.invoke(main, ["ask", "收益大概能有多少？", *extra]) for extra in ([], ["--language", "zh-cn"])]
    assert all(r.exit_code == 0 for r in alike), [r.output for r in alike]
    assert "/zh-tw/restaking/" in alike[0].stdout and "/zh/restaking/" in alike[1].stdout


def test_cli_ask_without_an_index_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTAKE_QA_DATA_DIR", str(tmp_path / "nothing"))
    result = CliRunner().invoke(main, ["ask", "再質押是什麼？"])
    assert result.exit_code == 1 and "restake-qa build" in result.output


def test_a_follow_up_that_goes_on_after_its_first_question(tools):
    # 「咁風險呢？」 (Cantonese "so, the risks?") carries the topic; what the message adds stays
    history = [{"question": "restaking到底係咩嚟㗎？", "answer": ""}]
    assert resolve_question("咁風險呢？會唔會成舊蝕晒😰", history, tools) == "再質押的風險呢？會唔會成舊蝕晒😰"
    assert resolve_question("咁風險呢？", history, tools) == "再質押的風險呢？"
    # a first question that names its own topic is left as it is
    assert resolve_question("EigenLayer 呢？安全嗎", history, tools) == "EigenLayer 呢？安全嗎"


def test_a_follow_up_after_a_question_naming_only_eth_carries_restaking(tools):
    history = [{"question": "纯小白想入坑，手上就0.5个eth，够不够门槛？最低要投多少", "answer": ""}]
    # (not 「以太币具体怎么开始呀 步骤求带🥺呢？」: ETH is named by every question, and a question
    # ending in an emoji or a particle gets a question mark, not another 呢)
    assert resolve_question("那具体怎么开始呀 步骤求带🥺", history, tools) == "再质押具体怎么开始呀 步骤求带🥺？"
    assert resolve_question("那怎么开始", history, tools) == "再质押怎么开始呢？"


def test_an_off_topic_follow_up_is_not_dragged_into_the_topic(retriever, tools):
    history = [{"question": "什麼是再質押？", "answer": ""}]
    assert resolve_question("今天天氣如何？", history, tools) == "今天天氣如何？"
    assert compose(retriever, "今天天氣如何？", history=history).refused
    # a follow-up that names its own term keeps it
    assert resolve_question("那 EigenLayer 呢？", history, tools) == "那 EigenLayer 呢？"


def test_table_rows_read_with_their_language_separators(retriever):
    """A row of three or more cells reads its further cells with their headers on the English
    page (its risks table has a level column: "… (Risk level: LOW)"), never with the Chinese
    pages' full-width 「；」 or 「（」."""
    from restake_qa.answer.render import display
    from restake_qa.units import section_units

    rows = [
        display(unit)
        for section in retriever.index.sections
        if section.lang == "en"
        for unit in section_units(section)
        if unit.kind == "row" and unit.table_kind == "labels" and len([c for c in unit.cells if c]) >= 3
    ]
    assert rows and all("；" not in text and "（" not in text and " (Risk level: " in text for text in rows), rows
    answer = compose(retriever, "Can I lose my ETH if I restake?")
    assert "；" not in answer.text, answer.text


def test_every_refusal_with_suggested_sections_introduces_them_and_a_greeting_is_welcomed(retriever):
    from restake_qa.answer.render import GREETING, SUGGESTIONS_INTRO

    for question in ("ETH 現在多少錢一顆？", "restake 賺的獎勵要不要交稅？", "EigenLayer 的空投什麼時候發？"):
        answer = compose(retriever, question)
        assert answer.refused and answer.suggestions and answer.message.endswith(SUGGESTIONS_INTRO["zh-tw"]), (
            question,
            answer.message,
        )
    for question, language in (("hi", "en"), ("你好～", "zh-tw"), ("嗨 大家好", "zh-tw")):
        answer = compose(retriever, question)
        assert answer.refused and answer.message == GREETING[language] and not answer.suggestions, question
    assert not compose(retriever, "hi, what is restaking?").refused


def test_a_follow_up_in_chat_spelling_and_a_minimum_asked_as_how_many(retriever):
    # 「那風險ㄋ」 is 「那風險呢」 written with the zhuyin letter: it carries the topic on, and
    # money that 「不見」 (vanishes) is what the slashing row says can happen
    history = [{"question": "這個再質押到底是什麼東西", "answer": ""}]
    risks = compose(retriever, "那風險ㄋ 錢會不會不見", history=history)
    assert risks.resolved_question and risks.resolved_question.startswith("再質押"), risks.resolved_question
    assert any("罰沒" in i.text for i in risks.items), [i.text for i in risks.items]
    # "how many ETH do I need" asks for the minimum, which the page says there is none of
    least = compose(retriever, "我钱不多 是不是要投够多少个ETH才能玩？")
    assert "无最低 ETH 限制" in least.items[0].text, [i.text for i in least.items]

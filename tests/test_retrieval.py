"""Retrieval and answer selection on a tiny corpus with the deterministic embedder: fusion,
the refusal rule, coverage, and quoting — fast, no model."""

from __future__ import annotations

import pytest

from restake_qa.answer import compose
from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.errors import ConfigError
from restake_qa.index import load_index
from restake_qa.retrieval import Retriever, parse_refusal_rule, relative
from restake_qa.text import TextTools

from helpers import make_settings

PAGE = """---
title: 小頁面
lang: zh-tw
---

這是一個測試頁面。

## 蘋果 {#apples}

蘋果是一種紅色的水果。 蘋果樹在秋天結果。

## 香蕉 {#bananas}

香蕉是黃色的。 香蕉含有很多鉀。

## 風險 {#risks}

| **風險** | **描述** |
| --- | --- |
| **蟲害** | 果園可能遭受蟲害。 |
| **霜凍** | 冬天的霜凍會傷害果樹。 |
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "fruit.zh-tw.md").write_text(PAGE, encoding="utf-8")
    settings = make_settings(tmp, corpus_dir=str(corpus), refusal_rule="bias=1")
    embedder = HashEmbedder()
    tools = TextTools()
    build_index(corpus, settings.data_path, embedder, settings, tools=tools)
    return load_index(settings.data_path), embedder, tools, settings


def retriever(tiny, **changes) -> Retriever:
    index, embedder, tools, settings = tiny
    return Retriever(index, embedder, tools, settings.replace(**changes))


def test_relative_scores():
    assert relative(0.9, 0.9, 0.1) == 1.0
    assert relative(0.85, 0.9, 0.1) == pytest.approx(0.5)
    assert relative(0.7, 0.9, 0.1) == 0.0


def test_the_section_holding_the_words_ranks_first(tiny):
    result = retriever(tiny).search("香蕉是什麼顏色？")
    assert result.hits[0].anchor == "bananas"
    assert "香蕉" in result.hits[0].matched_terms
    assert result.hits[0].scores.lexical > max(h.scores.lexical for h in result.hits[1:])


def test_fusion_follows_the_weights(tiny):
    only_heading = retriever(
        tiny,
        dense_weight=0,
        sentence_weight=0,
        anchor_weight=0,
        lexical_weight=0,
        heading_weight=1,
        substance_weight=0,
    )
    hits = only_heading.search("風險").hits
    assert hits[0].anchor == "risks" and hits[0].scores.fused == pytest.approx(1.0)
    assert all(h.scores.fused == 0 for h in hits[1:])


def test_the_refusal_rule_decides_and_explains(tiny):
    assert not retriever(tiny, refusal_rule="bias=1").search("香蕉是黃色的嗎").refused
    # a weak match is refused unless the question's own words are all the page's
    weak = retriever(tiny, refusal_rule="bias=-1")
    refused = weak.search("明天會下雨嗎")
    assert refused.refused and refused.evidence["confidence"] == -1.0 and refused.evidence["reason"] == "no_match"
    assert not weak.search("蘋果").refused and weak.search("蘋果").evidence["covered"] == ["蘋果"]
    # a focus term the page never uses refuses even a strong match, and is named
    unknown = retriever(tiny, refusal_rule="bias=5").search("Binance 的蘋果是什麼")
    assert unknown.refused and unknown.evidence["reason"] == "not_covered" and unknown.evidence["uncovered"]


def test_a_question_quoting_the_page_is_about_the_page(tiny):
    # 「蘋果樹在秋天」 is the page's own words: the unknown name beside it does not refuse it,
    # nor does a weak match; a quotation the page does not hold changes nothing
    r = retriever(tiny, refusal_rule="bias=-1")
    assert not r.search("Binance 說「蘋果樹在秋天」結果，這句是什麼意思？").refused
    assert r.search("Binance 說「蘋果樹在冬天」結果，這句是什麼意思？").refused


@pytest.mark.parametrize("text", ["bias", "cosine=x", "speed=1", "bias=1 bias"])
def test_a_bad_refusal_rule_is_a_clear_setting_error(text):
    with pytest.raises(ConfigError, match="refusal_rule"):
        parse_refusal_rule(text)


def test_an_answer_quotes_the_best_section_with_spans(tiny):
    r = retriever(tiny)
    answer = compose(r, "香蕉含有什麼？")
    assert not answer.refused and answer.citations[0].anchor == "bananas"
    index = tiny[0]
    for citation in answer.citations:
        section = index.section_by_key[f"fruit.zh-tw.md#{citation.anchor}"]
        assert section.text[citation.span[0] : citation.span[1]] == citation.snippet
    assert any("鉀" in s.text for s in answer.sentences)


def test_a_table_row_reads_as_a_sentence(tiny):
    answer = compose(retriever(tiny), "霜凍的風險是什麼？")
    assert any(s.text.startswith("霜凍：") for s in answer.sentences), answer.sentences


def test_a_refused_answer_has_no_quotes_but_suggestions_and_a_reason(tiny):
    answer = compose(retriever(tiny, refusal_rule="bias=-1"), "明天會下雨嗎")
    assert answer.refused and not answer.sentences and not answer.citations
    assert answer.suggestions and answer.message and answer.to_dict()["refusal"]["reason"] == "no_match"

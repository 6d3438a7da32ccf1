"""What an answer quotes, by what the question asks (answer/select.py), on the real page."""

from __future__ import annotations

import pytest

from restake_qa.answer import compose

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retriever(real_engine):
    return real_engine.snapshot().retriever


def test_a_who_question_naming_one_actor_gets_that_actors_row_not_the_whole_table(retriever):
    answer = compose(retriever, "哪些人算是原生再質押者")
    assert answer.layout == "text"
    assert answer.items[0].text.startswith("原生再質押者：")


def test_a_yes_no_question_quotes_the_comparison_table_only_when_it_names_both_sides(retriever):
    # slashing is asked about: the risks table's row, not the staking-vs-restaking rows
    slash = compose(retriever, "slash 是什麼意思 被 slash 的錢就不見了嗎")
    assert slash.items[0].text.startswith("罰款（或「罰沒」）"), [i.text for i in slash.items]
    both = compose(retriever, "再質押是不是比質押風險高？")
    assert "風險" in both.items[0].text and both.citations[0].anchor == "staking-vs-restaking"


def test_steps_start_after_what_the_asker_says_is_done(retriever):
    whole = compose(retriever, "新手要怎麼開始再質押")
    assert whole.layout == "steps" and whole.items[0].text.startswith("1.")
    following = compose(retriever, "我有 0.5 顆 ETH 放在 Lido，拿到 stETH 了，接下來要怎麼再質押？")
    assert following.layout == "steps"
    assert following.items[0].text.startswith("2.") and "LST" in following.items[0].text

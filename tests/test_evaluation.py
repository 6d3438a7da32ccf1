"""The evaluation harness, and the retrieval bar on the dev set (real model, real index)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from restake_qa.evaluation import Question, Ranking, evaluate, format_report, load_questions, product_system
from restake_qa.evaluation.answers import AnswerCase, FactMatcher, evaluate_answers, judge, load_answer_cases
from restake_qa.evaluation.refusals import evaluate_refusals, load_refusal_cases
from restake_qa.evaluation.tuning import FeatureSet, fit_refusal_rule, tune_weights
from restake_qa.question_patterns import INTENTS
from restake_qa.retrieval import FEATURES, REFUSAL_INPUTS

from helpers import QUESTIONS, ROOT

#: Just under the dev-set figures per language (hit@1 was 0.90 until four fresh batches written blind
#: — voice-typed, Cantonese, B站, product managers — joined the dev set: 0.911 → 0.890 overall).
BAR = {"hit@1": 0.87, "hit@3": 0.97, "mrr": 0.92}


def test_metrics_on_a_known_system():
    questions = [
        Question("a", ("x",), "en"),  # found first
        Question("b", ("y",), "en"),  # found second
        Question("c", ("z",), "zh-tw"),  # refused although in scope
        Question("d", (), "zh-tw"),  # out of scope, refused
        Question("e", (), "en"),  # out of scope, answered
    ]
    answers = {
        "a": (("x", "y"), False),
        "b": (("x", "y"), False),
        "c": (("z",), True),
        "d": (("x",), True),
        "e": (("x",), False),
    }
    report = evaluate(questions, lambda q: Ranking(*answers[q]))
    overall = report["overall"]
    assert overall["hit@1"] == pytest.approx(2 / 3, abs=1e-4) and overall["hit@3"] == 1.0
    assert overall["mrr"] == pytest.approx((1 + 0.5 + 1) / 3, abs=1e-4)
    assert overall["false_refusals"] == pytest.approx(1 / 3, abs=1e-4) and overall["refusal_rate"] == 0.5
    assert report["by_language"]["en"]["hit@1"] == 0.5
    assert {m["question"] for m in report["misses"]} == {"b", "c", "e"}
    assert "misses (3)" in format_report(report)


def test_question_file_errors_name_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "x", "sections": ["a"], "lang": "en"}\n{"question": "y"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.jsonl:2"):
        load_questions(path)


def test_dev_set_covers_every_section_language_and_out_of_scope(real_engine):
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 80
    anchors = {s.anchor for s in real_engine.snapshot().index.sections}
    covered = {a for q in questions for a in q.sections}
    assert covered == anchors
    assert {q.lang for q in questions} == {"zh-tw", "zh-cn", "en"}
    assert sum(not q.in_scope for q in questions) >= 12


def _synthetic(seed: int = 0) -> FeatureSet:
    """Sections whose gold row is best on feature 1 only; out-of-scope rows are low everywhere."""
    rng = np.random.default_rng(seed)
    questions, features, inputs = [], [], []
    for i in range(60):
        in_scope = i % 4 != 0
        gold = i % 3
        m = rng.random((3, len(FEATURES))) * 0.5
        if in_scope:
            m[gold, 1] = 1.0
        questions.append(Question(f"q{i}", (f"s{gold}",) if in_scope else (), "en" if i % 2 else "zh-tw"))
        features.append(m)
        base = 0.9 if in_scope else 0.8
        inputs.append([base + rng.normal(0, 0.01), base, 0.5 if in_scope else 0.1, 1.0 if in_scope else 0.3])
    return FeatureSet(tuple(questions), ("s0", "s1", "s2"), np.array(features), np.array(inputs))


def test_tuning_finds_the_informative_feature_and_a_separating_rule():
    data = _synthetic()
    weights = tune_weights(data, rounds=400, restarts=1)
    assert sum(weights.values()) == pytest.approx(1, abs=0.01)
    assert max(weights, key=weights.get) == FEATURES[1]
    rule = fit_refusal_rule(data, max_false_refusals=0.0)
    confidence = data.inputs @ np.array([rule[n] for n in REFUSAL_INPUTS]) + rule["bias"]
    in_scope = data.gold.any(1)
    assert (confidence[in_scope] >= 0).all() and (confidence[~in_scope] < 0).all()


@pytest.mark.slow
def test_retrieval_meets_the_bar_on_the_dev_set(real_engine):
    """The bar of the retrieval issue; a change that makes retrieval worse fails here."""
    report = evaluate(load_questions(QUESTIONS), product_system(real_engine.snapshot().retriever))
    print(json.dumps({k: v for k, v in report.items() if k != "misses"}, indent=1))
    for lang, metrics in report["by_language"].items():
        for name, floor in BAR.items():
            assert metrics[name] >= floor, (lang, name, metrics[name], report["misses"])
    overall = report["overall"]
    assert overall["refusal_rate"] >= 0.90, report["misses"]
    assert overall["false_refusals"] <= 0.05, report["misses"]


@pytest.mark.slow
def test_product_beats_the_plain_baseline(real_engine):
    from restake_qa.evaluation import baseline_system

    questions = [q for q in load_questions(QUESTIONS) if q.in_scope]
    snap = real_engine.snapshot()
    product = evaluate(questions, product_system(snap.retriever))["overall"]
    baseline = evaluate(questions, baseline_system(snap.index.sections, real_engine.embedder))["overall"]
    # (0.2 until the 20th and 21st fresh batches joined the dev set: 0.886 against 0.689)
    assert product["hit@1"] >= baseline["hit@1"] + 0.15
    assert product["mrr"] > baseline["mrr"]


# answers and refusals ------------------------------------------------------------------------
ANSWERS = ROOT / "tests" / "data" / "answers.jsonl"
REFUSALS = ROOT / "tests" / "data" / "refusals.jsonl"
#: The dev-set figures this code reaches (README "Measured quality"); a change that answers
#: worse fails here. Held-out figures are reported, never guarded on: they are not tuned on.
ANSWER_BAR = {"answer_accuracy": 0.75, "first_sentence_accuracy": 0.61}
ANSWER_BAR_PER_LANGUAGE = {"answer_accuracy": 0.72, "first_sentence_accuracy": 0.58}
REFUSAL_BAR = {"out_of_scope_refused": 0.91, "near_refused": 0.89, "in_scope_refused_max": 0.03}


def test_a_fact_is_found_across_scripts_widths_and_quotes(tools):
    m = FactMatcher(tools.to_simplified)
    assert m.found(["罰款（或「罰沒」）"], "罚款（或“罚没”）：就像 ETH 质押一样")
    assert m.found(["No minimum ETH"], "質押：no  minimum eth")
    assert m.found(["ＡＶＳ 獎勵"], "AVS 奖励")
    assert not m.found(["無最低 ETH 限制"], "低風險等級")


def test_judging_an_answer_all_any_and_first_sentence(tools):
    m = FactMatcher(tools.to_simplified)
    case = AnswerCase("x", "q", "zh-tw", "list", ("s",), (("甲",), ("乙",)), (("丙",),), "dev")
    both = {"refused": False, "items": [{"text": "丙與甲"}, {"text": "乙"}]}
    assert judge(case, both, m).correct and judge(case, both, m).first_correct
    missing = {"refused": False, "items": [{"text": "丁"}, {"text": "甲丙"}]}
    verdict = judge(case, missing, m)
    assert not verdict.correct and not verdict.first_correct and verdict.missing == ("乙",)
    refused = {"refused": True, "items": []}
    assert not judge(case, refused, m).correct and judge(case, refused, m).refused


def test_question_sets_are_split_and_cover_every_language_intent_and_scope():
    cases = load_answer_cases(ANSWERS)
    assert len(cases) >= 150 and sum(c.split == "holdout" for c in cases) >= 60
    for lang in ("zh-tw", "zh-cn", "en"):
        for split in ("dev", "holdout"):
            assert {c.intent for c in cases if c.lang == lang and c.split == split} == set(INTENTS)
    refusals = load_refusal_cases(REFUSALS)
    out = [c for c in refusals if not c.in_scope]
    assert len(out) >= 80 and sum(c.scope == "near" for c in out) >= 40
    assert {c.split for c in refusals} == {"dev", "holdout"}


@pytest.mark.slow
def test_answers_and_refusals_meet_the_bar_on_the_dev_sets(real_engine, tools):
    def ask(question: str) -> dict:
        return real_engine.answer(question)[0].to_dict()

    answers = evaluate_answers(load_answer_cases(ANSWERS, "dev"), ask, FactMatcher(tools.to_simplified))
    print(json.dumps({k: v for k, v in answers.items() if k != "wrong"}, indent=1, ensure_ascii=False))
    for name, floor in ANSWER_BAR.items():
        assert answers["overall"][name] >= floor, (name, answers["overall"], answers["wrong"])
    for lang, m in answers["by_language"].items():
        for name, floor in ANSWER_BAR_PER_LANGUAGE.items():
            assert m[name] >= floor, (lang, name, m)
    refusals = evaluate_refusals(load_refusal_cases(REFUSALS, "dev"), ask)
    overall = refusals["overall"]
    assert overall["out_of_scope_refused"] >= REFUSAL_BAR["out_of_scope_refused"], refusals["misses"]
    assert overall["near_refused"] >= REFUSAL_BAR["near_refused"], refusals["misses"]
    assert overall["in_scope_refused"] <= REFUSAL_BAR["in_scope_refused_max"], refusals["misses"]

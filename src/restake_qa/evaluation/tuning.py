"""Choosing the fusion weights and fitting the refusal rule on a question set
(``restake-qa eval --tune``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..retrieval import FEATURES, REFUSAL_INPUTS, Retriever
from .questions import Question


@dataclass(frozen=True)
class FeatureSet:
    """Every question's per-section features and refusal inputs, for tuning."""

    questions: tuple[Question, ...]
    anchors: tuple[str, ...]
    features: np.ndarray  # questions × sections × FEATURES
    inputs: np.ndarray  # questions × REFUSAL_INPUTS

    def head(self, n: int) -> FeatureSet:
        """The first ``n`` questions' features."""
        return FeatureSet(self.questions[:n], self.anchors, self.features[:n], self.inputs[:n])

    @property
    def gold(self) -> np.ndarray:
        return np.array([[a in q.sections for a in self.anchors] for q in self.questions])


def collect_features(questions: Sequence[Question], retriever: Retriever) -> FeatureSet:
    """Run the retriever once per question and keep what fusion and refusal see."""
    matrices: list[np.ndarray] = []
    inputs: list[list[float]] = []
    anchors: tuple[str, ...] = ()
    for q in questions:
        anchors_q, matrix, refusal = retriever.features(q.question)
        anchors = tuple(anchors_q)
        matrices.append(matrix)
        inputs.append([refusal[name] for name in REFUSAL_INPUTS])
    return FeatureSet(tuple(questions), anchors, np.array(matrices), np.array(inputs))


def _ranking_objective(data: FeatureSet, weights: np.ndarray) -> float:
    """The worst language's hit@1 and hit@3, plus a little of the mean hit@1 and MRR
    (in-scope questions): the bar is per language, so the worst language leads."""
    scores = data.features @ weights
    gold = data.gold
    inscope = gold.any(1)
    # a section's rank: how many others score at least as high (ties count against it, or a
    # feature equal for every section would rank every gold section first)
    ranks = (scores[:, :, None] <= scores[:, None, :]).sum(2) - 1
    first = np.where(gold, ranks, len(data.anchors)).min(1)
    langs = np.array([q.lang for q in data.questions])
    groups = [first[inscope & (langs == lang)] for lang in sorted(set(langs[inscope]))]
    hit1 = [(g == 0).mean() for g in groups]
    hit3 = [(g < 3).mean() for g in groups]
    mrr = (1 / (first[inscope] + 1)).mean()
    return float(min(hit1) + 0.5 * min(hit3) + 0.3 * np.mean(hit1) + 0.3 * mrr)


def tune_weights(data: FeatureSet, rounds: int = 2000, restarts: int = 3) -> dict[str, float]:
    """Fusion weights that maximise the ranking objective on ``data``: random local search
    from equal weights, restarted with a few seeds (deterministic), best kept. They sum to 1."""
    best, best_score = np.ones(len(FEATURES)) / len(FEATURES), -1.0
    for seed in range(restarts):
        rng = np.random.default_rng(seed)
        current = np.ones(len(FEATURES)) / len(FEATURES)
        current_score = _ranking_objective(data, current)
        for step in range(rounds):
            scale = 0.3 if step < rounds // 2 else 0.1
            trial = np.maximum(current + rng.normal(0, scale, len(current)) * (rng.random(len(current)) < 0.5), 0)
            if not trial.sum():
                continue
            trial = trial / trial.sum()
            score = _ranking_objective(data, trial)
            if score > current_score:
                current, current_score = trial, score
        if current_score > best_score:
            best, best_score = current, current_score
    return {f: round(float(w), 3) for f, w in zip(FEATURES, best)}


def fit_refusal_rule(data: FeatureSet, max_false_refusals: float = 0.03) -> dict[str, float]:
    """A linear refusal rule: logistic regression (class-balanced, on standardised inputs) of
    in-scope vs out-of-scope, with the bias moved so that at most ``max_false_refusals`` of
    the in-scope questions fall below 0. Coefficients are returned on the raw inputs."""
    y = data.gold.any(1).astype(float)
    if y.all() or not y.any():
        raise ValueError("fitting the refusal rule needs in-scope and out-of-scope questions")
    mu, sd = data.inputs.mean(0), data.inputs.std(0) + 1e-9
    z = (data.inputs - mu) / sd
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    coef, bias = np.zeros(z.shape[1]), 0.0
    for _ in range(5000):  # plain gradient descent with a little L2: 4 inputs, a few hundred rows
        p = 1 / (1 + np.exp(-(z @ coef + bias)))
        grad = weight * (p - y)
        coef -= 0.1 * (z.T @ grad / len(y) + 0.01 * coef)
        bias -= 0.1 * grad.mean()
    raw_coef = coef / sd
    margin = data.inputs @ raw_coef
    inscope = np.sort(margin[y == 1])
    cut = inscope[int(max_false_refusals * len(inscope))]
    rule = {name: round(float(c), 3) for name, c in zip(REFUSAL_INPUTS, raw_coef)}
    rule["bias"] = round(float(-cut) + 0.005, 3)  # the question at the cut stays answered
    return rule


def format_rule(rule: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in rule.items())

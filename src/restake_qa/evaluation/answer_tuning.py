"""Fitting the answer-unit weights on the answer question set (``restake-qa eval --tune``).

For every question, the candidate units the selector scores are labelled by whether they hold
one of the question's key facts; the weights maximise the likelihood that a softmax over each
question's candidates puts its mass on those units (a listwise ranking loss, plain gradient
descent with a little L2, deterministic)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..answer.select import Selector
from ..answer.weights import UNIT_FEATURES
from ..retrieval import Retriever
from .answers import AnswerCase, FactMatcher


@dataclass(frozen=True)
class UnitSet:
    features: list[np.ndarray]  # per question: candidates × UNIT_FEATURES
    labels: list[np.ndarray]  # per question: 1 where the unit holds a key fact


def collect_units(cases: Sequence[AnswerCase], retriever: Retriever, matcher: FactMatcher) -> UnitSet:
    features, labels = [], []
    for case in cases:
        result = retriever.search(case.question)
        if result.refused or not result.hits or result.query_vector is None:
            continue
        selector = Selector(retriever, result)
        facts = [*case.facts_all, *case.facts_any]
        y = np.array([any(matcher.found(f, u.text) for f in facts) for u in selector.units], dtype=float)
        if y.any():
            features.append(selector.features)
            labels.append(y)
    return UnitSet(features, labels)


def fit_unit_weights(data: UnitSet, steps: int = 3000, rate: float = 0.5, l2: float = 0.01) -> dict[str, float]:
    w = np.zeros(len(UNIT_FEATURES))
    for _ in range(steps):
        grad = l2 * w
        for x, y in zip(data.features, data.labels):
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            target = y / y.sum()
            grad += x.T @ (p - target) / len(data.features)
        w -= rate * grad
    return {name: round(float(v), 3) for name, v in zip(UNIT_FEATURES, w)}


def top1_accuracy(data: UnitSet, weights: dict[str, float]) -> float:
    w = np.array([weights.get(f, 0.0) for f in UNIT_FEATURES])
    hits = [y[int(np.argmax(x @ w))] for x, y in zip(data.features, data.labels)]
    return float(np.mean(hits)) if hits else 0.0


def format_weights(weights: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in weights.items() if v)

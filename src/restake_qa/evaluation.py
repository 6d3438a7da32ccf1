"""Section-level retrieval metrics over a question set, and the plain baseline beside them.

A question file is JSON lines: ``{"question": str, "sections": [anchor, …], "lang": str}``;
``"sections": []`` marks a question the page does not answer (it should be refused).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LANGUAGES = ("zh-tw", "zh-cn", "en")


@dataclass(frozen=True)
class Question:
    question: str
    sections: tuple[str, ...]
    lang: str

    @property
    def in_scope(self) -> bool:
        return bool(self.sections)


@dataclass(frozen=True)
class Ranking:
    """What a system returned for one question: section anchors best first, and refusal."""

    anchors: tuple[str, ...]
    refused: bool


def load_questions(path: Path) -> list[Question]:
    """Read a question file, naming the line of any malformed entry."""
    questions = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q = Question(str(row["question"]), tuple(row["sections"]), str(row.get("lang", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a question object ({exc})") from None
        questions.append(q)
    if not questions:
        raise ValueError(f"{path} holds no questions")
    return questions


def _metrics(pairs: list[tuple[Question, Ranking]]) -> dict[str, Any]:
    inscope = [(q, r) for q, r in pairs if q.in_scope]
    oos = [(q, r) for q, r in pairs if not q.in_scope]
    out: dict[str, Any] = {"questions": len(pairs), "in_scope": len(inscope), "out_of_scope": len(oos)}
    if inscope:
        ranks = []
        ndcg = []
        for q, r in inscope:
            gold = set(q.sections)
            rank = next((i + 1 for i, a in enumerate(r.anchors) if a in gold), None)
            ranks.append(rank)
            dcg = sum(1 / math.log2(i + 2) for i, a in enumerate(r.anchors[:5]) if a in gold)
            ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 5)))
            ndcg.append(dcg / ideal)
        for k in (1, 3, 5):
            out[f"hit@{k}"] = round(sum(1 for x in ranks if x and x <= k) / len(ranks), 4)
        out["mrr"] = round(sum(1 / x for x in ranks if x) / len(ranks), 4)
        out["ndcg@5"] = round(float(np.mean(ndcg)), 4)
        out["false_refusals"] = round(sum(r.refused for _, r in inscope) / len(inscope), 4)
    if oos:
        out["refusal_rate"] = round(sum(r.refused for _, r in oos) / len(oos), 4)
    return out


def evaluate(questions: Sequence[Question], system: Callable[[str], Ranking]) -> dict[str, Any]:
    """Run ``system`` on every question; overall and per-language metrics plus the misses."""
    pairs = [(q, system(q.question)) for q in questions]
    report: dict[str, Any] = {"overall": _metrics(pairs), "by_language": {}}
    for lang in sorted({q.lang for q in questions}, key=lambda x: (x not in LANGUAGES, x)):
        report["by_language"][lang] = _metrics([(q, r) for q, r in pairs if q.lang == lang])
    misses = []
    for q, r in pairs:
        if q.in_scope and (not r.anchors or r.anchors[0] not in q.sections or r.refused):
            misses.append({"question": q.question, "lang": q.lang, "gold": list(q.sections),
                           "got": list(r.anchors[:3]), "refused": r.refused})
        elif not q.in_scope and not r.refused:
            misses.append({"question": q.question, "lang": q.lang, "gold": [],
                           "got": list(r.anchors[:3]), "refused": False})
    report["misses"] = misses
    return report


def product_system(retriever, top_k: int = 5) -> Callable[[str], Ranking]:
    def run(question: str) -> Ranking:
        result = retriever.search(question, top_k=top_k)
        return Ranking(tuple(h.anchor for h in result.hits), result.refused)

    return run


def baseline_system(sections, embedder) -> Callable[[str], Ranking]:
    """The plain baseline: one chunk per paragraph/row, dense search only, never refuses."""
    paragraphs = [(s.anchor, line) for s in sections for line in s.text.split("\n") if line.strip()]
    vectors = embedder.embed_passages([p for _, p in paragraphs])

    def run(question: str) -> Ranking:
        scores = vectors @ embedder.embed_queries([question])[0]
        anchors: list[str] = []
        for i in np.argsort(-scores):
            if paragraphs[i][0] not in anchors:
                anchors.append(paragraphs[i][0])
        return Ranking(tuple(anchors[:5]), False)

    return run


def format_report(report: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """A plain-text table of the metrics (and the baseline's beside them)."""
    keys = ["hit@1", "hit@3", "hit@5", "mrr", "ndcg@5", "false_refusals", "refusal_rate"]
    lines = []
    groups = [("all", report["overall"], (baseline or {}).get("overall"))]
    for lang, m in report["by_language"].items():
        groups.append((lang, m, (baseline or {}).get("by_language", {}).get(lang)))
    header = f"{'group':<7} {'n':>4} " + " ".join(f"{k:>14}" for k in keys)
    lines.append(header)
    for name, m, b in groups:
        cells = []
        for k in keys:
            v = m.get(k)
            cell = "-" if v is None else f"{v:.3f}"
            if b is not None and b.get(k) is not None and k not in {"false_refusals", "refusal_rate"}:
                cell += f" ({b[k]:.3f})"
            cells.append(f"{cell:>14}")
        lines.append(f"{name:<7} {m['questions']:>4} " + " ".join(cells))
    if baseline:
        lines.append("(in brackets: the plain baseline — paragraph chunks, dense only)")
    if report["misses"]:
        lines.append("")
        lines.append(f"misses ({len(report['misses'])}):")
        for m in report["misses"]:
            what = "answered (should refuse)" if not m["gold"] else (
                "refused" if m["refused"] else f"got {m['got'][:1]}"
            )
            lines.append(f"  [{m['lang']}] {m['question']}  gold={m['gold']} {what}")
    return "\n".join(lines)


# tuning -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureSet:
    """Every question's per-section features and refusal inputs, for tuning."""

    questions: tuple[Question, ...]
    anchors: tuple[str, ...]
    features: np.ndarray  # questions × sections × FEATURES
    inputs: np.ndarray  # questions × REFUSAL_INPUTS

    @property
    def gold(self) -> np.ndarray:
        return np.array([[a in q.sections for a in self.anchors] for q in self.questions])


def collect_features(questions: Sequence[Question], retriever) -> FeatureSet:
    """Run the retriever once per question and keep what fusion and refusal see."""
    from .retrieval import REFUSAL_INPUTS

    matrices, inputs, anchors = [], [], ()
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
    ranks = (scores[:, :, None] < scores[:, None, :]).sum(2)
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
    from .retrieval import FEATURES

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
    from .retrieval import REFUSAL_INPUTS

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

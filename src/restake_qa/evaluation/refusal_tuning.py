"""Choosing the focus-term thresholds of the refusal decision on a question set
(``restake-qa eval --tune``): a grid over the settings :func:`restake_qa.refusal.decide` reads,
scored by the worst language's out-of-scope refusal rate minus a penalty for refusing
in-scope questions."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ..analysis import QuestionAnalysis
from ..config import Settings
from ..refusal import decide
from ..retrieval import Retriever

GRID = {
    "focus_strict_zipf": (2.5, 3.0, 3.5, 4.0),
    "focus_strict_zipf_latin": (1.5, 2.0, 2.4, 2.7),
    "focus_soft_zipf": (4.0, 4.3, 4.6, 5.0),
    "focus_soft_margin": (0.0, 1.5, 3.0, 4.5),
}
#: How much one in-scope question refused costs against one out-of-scope question answered:
#: a wrong refusal fails a reader the page could have helped, so it weighs more.
FALSE_REFUSAL_COST = 6.0


@dataclass(frozen=True)
class Observed:
    analysis: QuestionAnalysis
    confidence: float
    in_scope: bool
    lang: str
    coverage: float = 1.0


def observe(questions: Sequence[tuple[str, bool, str]], retriever: Retriever) -> list[Observed]:
    """Search each ``(question, in_scope, lang)`` once; keep what the decision reads."""
    out = []
    for question, in_scope, lang in questions:
        result = retriever.search(question)
        assert result.analysis is not None
        evidence = result.evidence
        out.append(
            Observed(
                result.analysis,
                float(evidence.get("confidence", 0.0)),
                in_scope,
                lang,
                float(evidence.get("coverage", 1.0)),
            )
        )
    return out


def score(
    data: Sequence[Observed], retriever: Retriever, settings: Settings
) -> tuple[float, dict[str, dict[str, float]]]:
    rates: dict[str, dict[str, float]] = {}
    for lang in sorted({d.lang for d in data}):
        rows = [d for d in data if d.lang == lang]
        refused = [decide(d.analysis, retriever.vocabulary, d.confidence, settings, d.coverage).refused for d in rows]
        inscope = [r for r, d in zip(refused, rows) if d.in_scope]
        oos = [r for r, d in zip(refused, rows) if not d.in_scope]
        rates[lang] = {
            "out_of_scope_refused": sum(oos) / max(len(oos), 1),
            "in_scope_refused": sum(inscope) / max(len(inscope), 1),
        }
    worst_oos = min(r["out_of_scope_refused"] for r in rates.values())
    mean_false = sum(r["in_scope_refused"] for r in rates.values()) / len(rates)
    worst_false = max(r["in_scope_refused"] for r in rates.values())
    return worst_oos - FALSE_REFUSAL_COST * (mean_false + worst_false) / 2, rates


def tune_focus_thresholds(data: Sequence[Observed], retriever: Retriever) -> dict[str, float]:
    """The grid point with the best score (ties: the first, i.e. the least strict)."""
    best: tuple[float, dict[str, float]] | None = None
    names = list(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        trial = dict(zip(names, values))
        if trial["focus_soft_zipf"] <= trial["focus_strict_zipf"]:
            continue
        value, _ = score(data, retriever, retriever.settings.replace(**trial))
        if best is None or value > best[0] + 1e-9:
            best = (value, trial)
    assert best is not None
    return best[1]

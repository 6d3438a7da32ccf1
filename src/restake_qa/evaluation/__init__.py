"""Measuring quality: section metrics on question sets beside the plain baseline, and tuning.

* :mod:`.questions` — question files;
* :mod:`.sections` — hit@k, MRR, nDCG@5 and refusal rates, per language;
* :mod:`.baseline` — the plain baseline (paragraph chunks, dense only);
* :mod:`.tuning` — fusion weights and the refusal rule chosen on a question set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import ENV_PREFIX
from ..retrieval import Retriever
from .baseline import PlainBaseline, baseline_system
from .questions import LANGUAGES, Question, load_questions
from .sections import Ranking, evaluate, format_report, product_system
from .tuning import collect_features, fit_refusal_rule, format_rule, tune_weights


@dataclass
class EvalOutcome:
    """What ``restake-qa eval`` reports."""

    product: dict[str, Any]
    baseline: dict[str, Any] | None
    index_version: str
    tuned: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "baseline": self.baseline,
            "index_version": self.index_version,
            "tuned_settings": self.tuned or None,
        }

    def format(self) -> str:
        lines = [format_report(self.product, self.baseline)]
        if self.tuned:
            lines.append("\ntuned settings (put them in config.py's defaults or the environment):")
            for name, value in self.tuned.items():
                lines.append(
                    f"{ENV_PREFIX}{name.upper()}={value!r}"
                    if isinstance(value, str)
                    else f"{ENV_PREFIX}{name.upper()}={value}"
                )
        return "\n".join(lines)


def tune(questions: Sequence[Question], retriever: Retriever, progress: Callable[[str], None]) -> dict[str, Any]:
    """Fusion weights and a refusal rule chosen on ``questions``, as settings."""
    progress(f"collecting features of {len(questions)} questions…")
    data = collect_features(questions, retriever)
    progress("choosing fusion weights…")
    tuned: dict[str, Any] = {f"{name}_weight": w for name, w in tune_weights(data).items()}
    progress("fitting the refusal rule…")
    tuned["refusal_rule"] = format_rule(fit_refusal_rule(data))
    return tuned


def run_evaluation(
    engine: Any,
    questions: Sequence[Question],
    *,
    baseline: bool = True,
    tune_first: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> EvalOutcome:
    """Section metrics of the engine's live index on ``questions`` (tuned first if asked)."""
    snap = engine.snapshot()
    retriever = snap.retriever
    tuned: dict[str, Any] = {}
    if tune_first:
        tuned = tune(questions, retriever, progress)
        retriever = Retriever(snap.index, engine.embedder, engine.tools, engine.settings.replace(**tuned))
    report = evaluate(questions, product_system(retriever))
    base = evaluate(questions, baseline_system(snap.index.sections, engine.embedder)) if baseline else None
    return EvalOutcome(report, base, snap.index.version, tuned)


__all__ = [
    "LANGUAGES",
    "EvalOutcome",
    "PlainBaseline",
    "Question",
    "Ranking",
    "baseline_system",
    "evaluate",
    "format_report",
    "load_questions",
    "product_system",
    "run_evaluation",
    "tune",
]

"""Measuring quality on question sets, each split into a dev part (tuned on) and a held-out part
(never tuned on), beside baselines:

* :mod:`.questions`, :mod:`.sections` — section retrieval: hit@k, MRR, nDCG@5, refusal rates,
  per language, beside the plain baseline (:mod:`.baseline`: paragraph chunks, dense only);
* :mod:`.answers` — answers judged answer by answer: is a key fact in the answer and in its
  first sentence, per language and intent, beside the first round's composer
  (:mod:`.composer_baseline`);
* :mod:`.refusals` — refused exactly when the page does not answer: near-topic, far and noise
  out-of-scope questions, and in-scope questions with unusual wording;
* :mod:`.tuning`, :mod:`.refusal_tuning`, :mod:`.answer_tuning` — what ``--tune`` fits on dev.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ENV_PREFIX
from ..errors import ConfigError
from ..retrieval import Retriever
from .answer_tuning import collect_units, fit_unit_weights, format_weights
from .answers import FactMatcher, evaluate_answers, format_answer_report, load_answer_cases
from .baseline import PlainBaseline, baseline_system
from .composer_baseline import similarity_answer
from .questions import LANGUAGES, Question, load_questions
from .refusal_tuning import observe, tune_focus_thresholds
from .refusals import evaluate_refusals, format_refusal_report, load_refusal_cases
from .sections import Ranking, evaluate, format_report, product_system
from .tuning import collect_features, fit_refusal_rule, format_rule, tune_weights

SUITES = ("sections", "answers", "refusals")
Progress = Callable[[str], None]


@dataclass
class EvalFiles:
    """Where the question sets are (``tests/data`` of the repository by default)."""

    folder: Path = Path("tests/data")
    questions: Path | None = None  # a section question file instead of questions[_holdout].jsonl

    def sections(self, split: str) -> Path:
        if self.questions is not None:
            return self.questions
        return self.folder / ("questions.jsonl" if split == "dev" else "questions_holdout.jsonl")

    @property
    def answers(self) -> Path:
        return self.folder / "answers.jsonl"

    @property
    def refusals(self) -> Path:
        return self.folder / "refusals.jsonl"


@dataclass
class EvalOutcome:
    """What ``restake-qa eval`` reports."""

    split: str
    index_version: str
    reports: dict[str, Any] = field(default_factory=dict)
    tuned: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "index_version": self.index_version,
            **self.reports,
            "tuned_settings": self.tuned or None,
        }

    def format(self, show_misses: bool = True) -> str:
        parts = [f"split: {self.split}   index: {self.index_version}"]
        if "sections" in self.reports:
            r = self.reports["sections"]
            parts.append(
                "== sections (retrieval)\n"
                + format_report(r["product"] if show_misses else {**r["product"], "misses": []}, r["baseline"])
            )
        if "answers" in self.reports:
            r = self.reports["answers"]
            parts.append(
                "== answers (a key fact in the answer / in its first sentence)\n"
                + format_answer_report(r["product"], r["baseline"], show_wrong=show_misses)
            )
        if "refusals" in self.reports:
            parts.append("== refusals\n" + format_refusal_report(self.reports["refusals"], show_misses=show_misses))
        if self.tuned:
            lines = ["tuned settings (put them in config.py's defaults or the environment):"]
            for name, value in self.tuned.items():
                lines.append(
                    f"{ENV_PREFIX}{name.upper()}={value!r}"
                    if isinstance(value, str)
                    else f"{ENV_PREFIX}{name.upper()}={value}"
                )
            parts.append("\n".join(lines))
        return "\n\n".join(parts)


def tune(
    questions: Sequence[Question], retriever: Retriever, progress: Progress, more: Sequence[Question] = ()
) -> dict[str, Any]:
    """Fusion weights chosen on section ``questions`` and ``more`` in-scope ones (the answer
    set's questions with their sections), and a refusal rule fitted on ``questions``, as settings."""
    progress(f"collecting features of {len(questions) + len(more)} questions…")
    data = collect_features([*questions, *more], retriever)
    progress("choosing fusion weights…")
    tuned: dict[str, Any] = {f"{name}_weight": w for name, w in tune_weights(data).items()}
    progress("fitting the refusal rule…")
    tuned["refusal_rule"] = format_rule(fit_refusal_rule(data.head(len(questions))))
    return tuned


def run_evaluation(
    engine: Any,
    questions: Sequence[Question] | None = None,
    *,
    split: str = "dev",
    suites: Sequence[str] = SUITES,
    files: EvalFiles | None = None,
    baseline: bool = True,
    tune_first: bool = False,
    progress: Progress = lambda _m: None,
) -> EvalOutcome:
    """Every asked suite on the ``split`` of its question set (``questions`` overrides the
    section set), with ``--tune`` first fitting the settings on dev."""
    if tune_first and split != "dev":
        raise ConfigError("--tune fits settings on the dev split only; the held-out split is never tuned on")
    files = files or EvalFiles()
    snap = engine.snapshot()
    retriever: Retriever = snap.retriever
    outcome = EvalOutcome(split, snap.index.version)

    def fresh(settings_changes: dict[str, Any]) -> Retriever:
        return Retriever(
            snap.index,
            engine.embedder,
            engine.tools,
            engine.settings.replace(**settings_changes),
            analyzer=retriever.analyzer,
        )

    section_questions = (
        list(questions)
        if questions is not None
        else (load_questions(files.sections(split)) if "sections" in suites else [])
    )
    answer_cases = load_answer_cases(files.answers, split) if "answers" in suites or tune_first else []
    refusal_cases = load_refusal_cases(files.refusals, split) if "refusals" in suites or tune_first else []
    matcher = FactMatcher(engine.tools.to_simplified)

    if tune_first:
        answered = [Question(c.question, c.sections, c.lang) for c in answer_cases]
        outcome.tuned.update(
            tune(section_questions or load_questions(files.sections("dev")), retriever, progress, answered)
        )
        retriever = fresh(outcome.tuned)
        progress("choosing the focus-term thresholds of refusals…")
        asked = [(c.question, c.in_scope, c.lang) for c in refusal_cases] + [
            (c.question, True, c.lang) for c in answer_cases
        ]
        outcome.tuned.update(tune_focus_thresholds(observe(asked, retriever), retriever))
        retriever = fresh(outcome.tuned)
        progress("fitting the answer-unit weights…")
        outcome.tuned["answer_unit_weights"] = format_weights(
            fit_unit_weights(collect_units(answer_cases, retriever, matcher))
        )
        retriever = fresh(outcome.tuned)

    def ask(question: str) -> dict[str, Any]:
        from ..answer import compose

        return compose(retriever, question).to_dict()

    if "sections" in suites:
        progress(f"sections: {len(section_questions)} questions…")
        product = evaluate(section_questions, product_system(retriever))
        base = evaluate(section_questions, baseline_system(snap.index.sections, engine.embedder)) if baseline else None
        outcome.reports["sections"] = {"product": product, "baseline": base}
    if "answers" in suites:
        progress(f"answers: {len(answer_cases)} questions…")
        product = evaluate_answers(answer_cases, ask, matcher)
        base = evaluate_answers(answer_cases, lambda q: similarity_answer(retriever, q), matcher) if baseline else None
        outcome.reports["answers"] = {"product": product, "baseline": base}
    if "refusals" in suites:
        progress(f"refusals: {len(refusal_cases)} questions…")
        outcome.reports["refusals"] = evaluate_refusals(refusal_cases, ask)
    return outcome


__all__ = [
    "LANGUAGES",
    "SUITES",
    "EvalFiles",
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

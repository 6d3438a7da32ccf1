"""Answer-level evaluation: does the quoted answer hold the key fact? Judged answer by answer.

A question file (``tests/data/answers.jsonl``) holds in-scope questions with their intent and
gold key facts: ``{"id", "question", "lang", "intent", "sections", "facts": {"all": [[…]],
"any": [[…]]}, "split"}``. A fact is a list of variants (the same fact as each language
version of the page writes it); it is found when one variant occurs in the answer, compared
after normalising script (OpenCC), width, case, spaces, quotes and brackets. The answer is
correct when it is not refused, holds every ``all`` fact and at least one ``any`` fact (when
there are any); its first sentence is correct when it holds at least one fact.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..question_patterns import INTENTS
from .questions import rates_by_language

SPLITS = ("dev", "holdout")
_IGNORED = re.compile(r"[\s「」『』“”‘’\"'（）()《》〈〉\[\]【】*_`]+")


@dataclass(frozen=True)
class AnswerCase:
    id: str
    question: str
    lang: str
    intent: str
    sections: tuple[str, ...]
    facts_all: tuple[tuple[str, ...], ...]
    facts_any: tuple[tuple[str, ...], ...]
    split: str


def load_answer_cases(path: Path, split: str | None = None) -> list[AnswerCase]:
    """Read an answer-question file (only ``split`` if given), naming the line of a bad entry."""
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            facts = row.get("facts") or {}
            case = AnswerCase(
                id=str(row["id"]),
                question=str(row["question"]),
                lang=str(row["lang"]),
                intent=str(row["intent"]),
                sections=tuple(row.get("sections") or ()),
                facts_all=tuple(tuple(str(v) for v in f) for f in facts.get("all", [])),
                facts_any=tuple(tuple(str(v) for v in f) for f in facts.get("any", [])),
                split=str(row.get("split", "dev")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not an answer question ({exc})") from None
        if case.intent not in INTENTS or case.split not in SPLITS or not (case.facts_all or case.facts_any):
            raise ValueError(f"{path}:{n}: needs an intent of {INTENTS}, a split of {SPLITS} and at least one fact")
        if split is None or case.split == split:
            cases.append(case)
    return cases


class FactMatcher:
    """Finds fact variants in answer text, across scripts (both sides go through ``to_simplified``)."""

    def __init__(self, to_simplified: Callable[[str], str]) -> None:
        self._to_simplified = to_simplified

    def normalize(self, text: str) -> str:
        return _IGNORED.sub("", self._to_simplified(unicodedata.normalize("NFKC", text)).lower())

    def found(self, fact: Sequence[str], text: str) -> bool:
        norm = self.normalize(text)
        return any(self.normalize(v) in norm for v in fact if v.strip())


@dataclass(frozen=True)
class Verdict:
    correct: bool
    first_correct: bool
    refused: bool
    missing: tuple[str, ...]  # the first variant of each fact not found


def judge(case: AnswerCase, body: dict[str, Any], matcher: FactMatcher) -> Verdict:
    """Judge one answer (the API's JSON) against the case's key facts."""
    units = answer_units(body)
    text = "\n".join(units)
    refused = bool(body.get("refused"))
    missing_all = [f for f in case.facts_all if not matcher.found(f, text)]
    any_ok = not case.facts_any or any(matcher.found(f, text) for f in case.facts_any)
    missing = [f[0] for f in missing_all] + ([] if any_ok else [case.facts_any[0][0]])
    first = units[0] if units else ""
    first_ok = bool(first) and any(matcher.found(f, first) for f in (*case.facts_all, *case.facts_any))
    correct = not refused and not missing_all and any_ok
    return Verdict(correct, not refused and first_ok, refused, tuple(missing))


def answer_units(body: dict[str, Any]) -> list[str]:
    """The quoted texts of an answer in order (a lead-in line is not a quotation)."""
    items = body.get("items")
    if isinstance(items, list) and items:
        return [str(i.get("text", "")) for i in items]
    return [str(s.get("text", "")) for s in body.get("sentences") or []]


def _rates(rows: list[tuple[AnswerCase, Verdict]]) -> dict[str, Any]:
    n = len(rows)
    if not n:
        return {"questions": 0}
    return {
        "questions": n,
        "answer_accuracy": round(sum(v.correct for _, v in rows) / n, 4),
        "first_sentence_accuracy": round(sum(v.first_correct for _, v in rows) / n, 4),
        "refused": round(sum(v.refused for _, v in rows) / n, 4),
    }


def evaluate_answers(
    cases: Sequence[AnswerCase], ask: Callable[[str], dict[str, Any]], matcher: FactMatcher
) -> dict[str, Any]:
    """Ask every question; answer and first-sentence accuracy overall, per language and per
    intent, and every wrong answer with what it said."""
    rows = []
    wrong = []
    for case in cases:
        body = ask(case.question)
        verdict = judge(case, body, matcher)
        rows.append((case, verdict))
        if not (verdict.correct and verdict.first_correct):
            wrong.append(
                {
                    "id": case.id,
                    "lang": case.lang,
                    "intent": case.intent,
                    "question": case.question,
                    "refused": verdict.refused,
                    "correct": verdict.correct,
                    "first_correct": verdict.first_correct,
                    "missing": list(verdict.missing),
                    "answer": answer_units(body)[:4],
                    "cited": [c.get("anchor") for c in body.get("citations") or []][:4],
                }
            )
    return {
        "overall": _rates(rows),
        "by_language": rates_by_language(rows, _rates),
        "by_intent": {
            i: _rates([r for r in rows if r[0].intent == i]) for i in INTENTS if any(r[0].intent == i for r in rows)
        },
        "wrong": wrong,
    }


def format_answer_report(
    report: dict[str, Any], baseline: dict[str, Any] | None = None, show_wrong: bool = True
) -> str:
    keys = ("answer_accuracy", "first_sentence_accuracy", "refused")
    lines = [f"{'group':<12} {'n':>4} " + " ".join(f"{k:>26}" for k in keys)]

    def row(name: str, m: dict[str, Any], b: dict[str, Any] | None) -> str:
        cells = []
        for k in keys:
            v = m.get(k)
            cell = "-" if v is None else f"{v:.3f}"
            if b and b.get(k) is not None:
                cell += f" ({b[k]:.3f})"
            cells.append(f"{cell:>26}")
        return f"{name:<12} {m['questions']:>4} " + " ".join(cells)

    lines.append(row("all", report["overall"], (baseline or {}).get("overall")))
    for group in ("by_language", "by_intent"):
        for name, m in report[group].items():
            lines.append(row(name, m, (baseline or {}).get(group, {}).get(name)))
    if baseline:
        lines.append("(in brackets: the baseline composer — the best sentences by similarity, no intent)")
    if show_wrong and report["wrong"]:
        lines.append("")
        lines.append(f"wrong answers ({len(report['wrong'])}):")
        for w in report["wrong"]:
            what = "refused" if w["refused"] else ("first sentence off" if w["correct"] else f"missing {w['missing']}")
            lines.append(f"  [{w['id']} {w['lang']} {w['intent']}] {w['question']}  → {what}; cited {w['cited']}")
            for text in w["answer"][:3]:
                lines.append(f"      · {text[:110]}")
    return "\n".join(lines)

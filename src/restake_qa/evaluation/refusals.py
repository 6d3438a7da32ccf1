"""Refusal evaluation: is a question refused exactly when the page does not answer it?

A question file (``tests/data/refusals.jsonl``) holds out-of-scope questions — ``near`` topic
(prices, live yields, airdrops, exchanges, protocols the page never names…), ``far`` off topic,
``noise`` (markup, template syntax, instructions aimed at the assistant) — and in-scope
questions with unusual wording (``in``), each ``{"id", "question", "lang", "scope",
"category", "absent", "sections", "split"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .questions import rates_by_language

SCOPES = ("near", "far", "noise", "in")


@dataclass(frozen=True)
class RefusalCase:
    id: str
    question: str
    lang: str
    scope: str
    category: str
    absent: str
    sections: tuple[str, ...]
    split: str

    @property
    def in_scope(self) -> bool:
        return self.scope == "in"


def load_refusal_cases(path: Path, split: str | None = None) -> list[RefusalCase]:
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            case = RefusalCase(
                id=str(row["id"]),
                question=str(row["question"]),
                lang=str(row["lang"]),
                scope=str(row["scope"]),
                category=str(row.get("category", "")),
                absent=str(row.get("absent", "")),
                sections=tuple(row.get("sections") or ()),
                split=str(row.get("split", "dev")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a refusal question ({exc})") from None
        if case.scope not in SCOPES:
            raise ValueError(f"{path}:{n}: scope must be one of {SCOPES}")
        if split is None or case.split == split:
            cases.append(case)
    return cases


def _rates(rows: list[tuple[RefusalCase, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"questions": len(rows)}
    oos = [b for c, b in rows if not c.in_scope]
    if oos:
        out["out_of_scope_refused"] = round(sum(bool(b.get("refused")) for b in oos) / len(oos), 4)
    for scope in ("near", "far", "noise"):
        group = [b for c, b in rows if c.scope == scope]
        if group:
            out[f"{scope}_refused"] = round(sum(bool(b.get("refused")) for b in group) / len(group), 4)
    inscope = [(c, b) for c, b in rows if c.in_scope]
    if inscope:
        out["in_scope_refused"] = round(sum(bool(b.get("refused")) for _, b in inscope) / len(inscope), 4)
        top = [((b.get("citations") or [{}])[0].get("anchor") if not b.get("refused") else None) for _, b in inscope]
        out["in_scope_first_section_ok"] = round(
            sum(t in c.sections for (c, _), t in zip(inscope, top)) / len(inscope), 4
        )
    return out


def evaluate_refusals(cases: Sequence[RefusalCase], ask: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    rows = [(c, ask(c.question)) for c in cases]
    misses = []
    for c, b in rows:
        if c.in_scope == bool(b.get("refused")):
            refusal = b.get("refusal") or {}
            misses.append(
                {
                    "id": c.id,
                    "lang": c.lang,
                    "scope": c.scope,
                    "category": c.category,
                    "question": c.question,
                    "refused": bool(b.get("refused")),
                    "reason": refusal.get("reason"),
                    "uncovered": refusal.get("uncovered"),
                    "evidence": {k: (b.get("evidence") or {}).get(k) for k in ("confidence", "coverage")},
                    "cited": [x.get("anchor") for x in b.get("citations") or []][:2],
                }
            )
    return {
        "overall": _rates(rows),
        "by_language": rates_by_language(rows, _rates),
        "misses": misses,
    }


def format_refusal_report(report: dict[str, Any], show_misses: bool = True) -> str:
    keys = ("out_of_scope_refused", "near_refused", "far_refused", "noise_refused", "in_scope_refused")
    lines = [f"{'group':<8} {'n':>4} " + " ".join(f"{k:>21}" for k in keys)]
    for name, m in [("all", report["overall"]), *report["by_language"].items()]:
        cells = " ".join(f"{('-' if m.get(k) is None else format(m[k], '.3f')):>21}" for k in keys)
        lines.append(f"{name:<8} {m['questions']:>4} {cells}")
    if show_misses and report["misses"]:
        lines.append("")
        lines.append(f"misses ({len(report['misses'])}):")
        for m in report["misses"]:
            what = "refused (in scope)" if m["refused"] else f"answered ({m['scope']}, {m['category']})"
            lines.append(
                f"  [{m['id']} {m['lang']}] {m['question']}  → {what}; reason {m['reason']} "
                f"uncovered {m['uncovered']} {m['evidence']} cited {m['cited']}"
            )
    return "\n".join(lines)

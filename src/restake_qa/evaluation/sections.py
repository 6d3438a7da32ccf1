"""Section-level retrieval metrics over a question set (hit@k, MRR, nDCG@5, refusals)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..retrieval import Retriever
from .questions import LANGUAGES, Question


@dataclass(frozen=True)
class Ranking:
    """What a system returned for one question: section anchors best first, and refusal."""

    anchors: tuple[str, ...]
    refused: bool


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
            misses.append(
                {
                    "question": q.question,
                    "lang": q.lang,
                    "gold": list(q.sections),
                    "got": list(r.anchors[:3]),
                    "refused": r.refused,
                }
            )
        elif not q.in_scope and not r.refused:
            misses.append(
                {"question": q.question, "lang": q.lang, "gold": [], "got": list(r.anchors[:3]), "refused": False}
            )
    report["misses"] = misses
    return report


def product_system(retriever: Retriever, top_k: int = 5) -> Callable[[str], Ranking]:
    def run(question: str) -> Ranking:
        result = retriever.search(question, top_k=top_k)
        return Ranking(tuple(h.anchor for h in result.hits), result.refused)

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
            what = (
                "answered (should refuse)" if not m["gold"] else ("refused" if m["refused"] else f"got {m['got'][:1]}")
            )
            lines.append(f"  [{m['lang']}] {m['question']}  gold={m['gold']} {what}")
    return "\n".join(lines)

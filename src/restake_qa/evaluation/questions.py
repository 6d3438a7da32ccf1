"""Question files: JSON lines of ``{"question": str, "sections": [anchor, …], "lang": str}``;
``"sections": []`` marks a question the page does not answer (it should be refused)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LANGUAGES = ("zh-tw", "zh-cn", "en")


def rates_by_language(rows: Sequence[tuple[Any, Any]], rates: Callable[[list], dict[str, Any]]) -> dict[str, Any]:
    """``rates`` of the (case, result) rows of each language present, in LANGUAGES order."""
    return {
        lang: rates([r for r in rows if r[0].lang == lang])
        for lang in LANGUAGES
        if any(r[0].lang == lang for r in rows)
    }


@dataclass(frozen=True)
class Question:
    question: str
    sections: tuple[str, ...]
    lang: str

    @property
    def in_scope(self) -> bool:
        return bool(self.sections)


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

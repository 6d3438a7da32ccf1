"""Question files: JSON lines of ``{"question": str, "sections": [anchor, …], "lang": str}``;
``"sections": []`` marks a question the page does not answer (it should be refused)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("zh-tw", "zh-cn", "en")


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

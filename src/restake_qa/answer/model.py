"""What an answer is: quoted items, each cited, laid out by what the question asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..retrieval import Retrieval

LAYOUTS = ("text", "list", "steps", "table")


@dataclass(frozen=True)
class Citation:
    n: int
    title: str
    anchor: str
    url: str
    snippet: str  # the quoted text exactly as the page has it (section.text[span])
    span: tuple[int, int]
    scores: dict[str, float]
    lang: str = ""  # the version of the page quoted (its front-matter lang)
    original: dict[str, str] | None = None  # the same section in the page's main version, when not this one

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "title": self.title,
            "anchor": self.anchor,
            "url": self.url,
            "snippet": self.snippet,
            "span": list(self.span),
            "scores": self.scores,
            "lang": self.lang,
            "original": self.original,
        }


@dataclass(frozen=True)
class AnswerItem:
    """One quoted unit of an answer: a sentence, a table row, a step or a list item."""

    text: str  # as shown (a labels-table row reads 「營運者：…」; Simplified for a Simplified question)
    citations: tuple[int, ...]
    kind: str = "sentence"  # sentence, alert, row, step, item, video
    label: str = ""  # a row's term, shown bold in a list
    cells: tuple[str, ...] = ()  # a comparison row's cells, aligned with Answer.headers
    links: tuple[dict[str, str], ...] = ()  # {text, url}: the page's links that go with this line (a video's)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "citations": list(self.citations), "kind": self.kind}
        if self.label:
            out["label"] = self.label
        if self.cells:
            out["cells"] = list(self.cells)
        if self.links:
            out["links"] = [dict(link) for link in self.links]
        return out


@dataclass(frozen=True)
class Answer:
    question: str
    language: str
    refused: bool
    items: tuple[AnswerItem, ...]
    citations: tuple[Citation, ...]
    retrieval: Retrieval
    intent: str = "other"
    layout: str = "text"
    lead: str | None = None  # a fixed-template line before the items (「頁面列出 4 項：」)
    headers: tuple[str, ...] = ()  # a table answer's column headers
    message: str | None = None
    note: str | None = None
    resolved_question: str | None = None
    suggestions: tuple[dict[str, str], ...] = ()
    refusal: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sentences(self) -> tuple[AnswerItem, ...]:
        return self.items

    @property
    def text(self) -> str:
        """The answer as plain text with its [n] markers (a lead-in line first)."""
        body = " ".join(i.text + "".join(f"[{n}]" for n in i.citations) for i in self.items)
        return f"{self.lead} {body}" if self.lead and body else body

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "intent": self.intent,
            "layout": self.layout,
            "lead": self.lead,
            "headers": list(self.headers),
            "items": [i.to_dict() for i in self.items],
            "sentences": [{"text": i.text, "citations": list(i.citations)} for i in self.items],
            "citations": [c.to_dict() for c in self.citations],
            "passages": [
                {
                    "anchor": h.anchor,
                    "title": h.section.title,
                    "url": h.section.url,
                    "text": h.chunks[0].chunk.display_text,
                    "scores": h.scores.to_dict(),
                    "matched_terms": list(h.matched_terms),
                }
                for h in self.retrieval.hits
            ],
            "refused": self.refused,
            "refusal": self.refusal,
            "message": self.message,
            "note": self.note,
            "suggestions": list(self.suggestions),
            "language": self.language,
            "resolved_question": self.resolved_question,
            "evidence": self.retrieval.evidence,
        }

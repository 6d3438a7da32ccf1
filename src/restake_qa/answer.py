"""Retrieval → an extractive answer whose every sentence is cited.

The answer is made only of sentences of the page: those of the best sections that are most
similar to the question (the model's cosine of question and sentence, plus the lexical match),
near-duplicates dropped, in page order within a section, at most ``answer_max_sentences``.
Each sentence carries a citation ``[n]`` naming its section, URL, snippet and character span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .chunking import Sentence
from .retrieval import DENSE_CEILING, DENSE_FLOOR, Hit, Retrieval, Retriever
from .text import TextTools, detect_language

_ANAPHORA = re.compile(
    r"它|它們|他們|牠|其|此|這個|那個|這些|那些|这个|那个|这些|那些|它们|他们|^那|^那麼|^那么|呢[？?]?$|"
    r"\b(it|its|they|them|their|this|that|these|those|there)\b",
    re.IGNORECASE,
)
_LABEL = re.compile(r"^[^：；。]{1,12}：([^：；。]{1,24})；[^：；。]{1,12}：")

ENGLISH_NOTE = "The source page is in Traditional Chinese; this answer quotes it."
REFUSALS = {
    "zh-tw": "抱歉，這個問題超出了 ethereum.org 再質押頁面的內容，我無法根據該頁面回答。您可以看看以下相關章節：",
    "zh-cn": "抱歉，这个问题超出了 ethereum.org 再质押页面的内容，我无法根据该页面回答。您可以看看以下相关章节：",
    "en": "Sorry, ethereum.org's restaking page does not answer that, so I can't either. These sections may be close:",
}


@dataclass(frozen=True)
class Citation:
    n: int
    title: str
    anchor: str
    url: str
    snippet: str
    span: tuple[int, int]
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "title": self.title, "anchor": self.anchor, "url": self.url,
                "snippet": self.snippet, "span": list(self.span), "scores": self.scores}


@dataclass(frozen=True)
class AnswerSentence:
    text: str
    citations: tuple[int, ...]


@dataclass(frozen=True)
class Answer:
    question: str
    language: str
    refused: bool
    sentences: tuple[AnswerSentence, ...]
    citations: tuple[Citation, ...]
    retrieval: Retrieval
    message: str | None = None
    note: str | None = None
    resolved_question: str | None = None
    suggestions: tuple[dict[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(f"{s.text}" + "".join(f"[{n}]" for n in s.citations) for s in self.sentences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "sentences": [{"text": s.text, "citations": list(s.citations)} for s in self.sentences],
            "citations": [c.to_dict() for c in self.citations],
            "passages": [
                {
                    "anchor": h.anchor, "title": h.section.title, "url": h.section.url,
                    "text": h.chunks[0].chunk.display_text, "scores": h.scores.to_dict(),
                    "matched_terms": list(h.matched_terms),
                }
                for h in self.retrieval.hits
            ],
            "refused": self.refused,
            "message": self.message,
            "note": self.note,
            "suggestions": list(self.suggestions),
            "language": self.language,
            "resolved_question": self.resolved_question,
            "evidence": self.retrieval.evidence,
        }


def resolve_question(question: str, history: list[dict[str, str]], tools: TextTools) -> str:
    """Make a follow-up (「那風險呢？」, 「它要等多久？」) stand alone by carrying over the
    glossary terms of the previous turn; a question that names its own topic is kept."""
    if not history:
        return question
    own_terms = tools.glossary_terms_in(question)
    anaphoric = bool(_ANAPHORA.search(question))
    short = len(question.strip()) <= 8 or (question.isascii() and len(question.split()) <= 4)
    if own_terms and not anaphoric:
        return question
    if not (anaphoric or short or not own_terms):
        return question
    for turn in reversed(history):
        terms = tools.glossary_terms_in(turn.get("question", "")) or tools.glossary_terms_in(
            turn.get("answer", "")
        )[:2]
        if terms:
            names = [t.term for t in terms if t.term not in question][:3]
            if names:
                return " ".join(names) + " " + question
            return question
    return question


def _display(sentence: Sentence) -> str:
    """A table row reads as a sentence: 「術語：營運者；描述：…」 → 「營運者：…」."""
    m = _LABEL.match(sentence.text)
    if m:
        return f"{m.group(1)}：{sentence.text[m.end():]}"
    return sentence.text


def _bigrams(text: str) -> set[str]:
    chars = [c for c in text if not c.isspace()]
    return {a + b for a, b in zip(chars, chars[1:])}


def compose(
    retriever: Retriever,
    question: str,
    history: list[dict[str, str]] | None = None,
    top_k: int | None = None,
) -> Answer:
    """Answer ``question`` (with the conversation so far) from the retriever's index."""
    tools = retriever.tools
    settings = retriever.settings
    resolved = resolve_question(question, history or [], tools)
    result = retriever.search(resolved, top_k=top_k)
    language = result.language if resolved == question else detect_language(question, tools)
    if result.refused or not result.hits:
        suggestions = tuple(
            {"title": h.section.title, "anchor": h.anchor, "url": h.section.url}
            for h in result.hits[:3]
        )
        return Answer(
            question=question, language=language, refused=True, sentences=(), citations=(),
            retrieval=result, message=REFUSALS[language], suggestions=suggestions,
            resolved_question=resolved if resolved != question else None,
        )

    index = retriever.index
    qvec = retriever.embedder.embed_queries([resolved])[0]
    query_tokens = set(result.evidence.get("query_tokens", []))
    best = result.hits[0].scores.fused
    chosen_hits: list[Hit] = [
        h for h in result.hits[: int(settings.get("answer_sections", 2))]
        if h is result.hits[0] or h.scores.fused >= best - 0.08
    ]
    rank_of = {h.section.key: r for r, h in enumerate(chosen_hits)}
    candidates = [
        (i, s) for i, s in enumerate(index.sentences) if s.section_key in rank_of
    ]
    scored = []
    if candidates:
        vecs = index.sentence_vectors[[i for i, _ in candidates]]
        cos = vecs @ qvec
        for (i, sentence), c in zip(candidates, cos):
            dense = min(max((float(c) - DENSE_FLOOR) / (DENSE_CEILING - DENSE_FLOOR), 0.0), 1.0)
            toks = set(tools.lexical_tokens(sentence.text))
            lexical = len(toks & query_tokens) / len(query_tokens) if query_tokens else 0.0
            section_bonus = 0.1 if rank_of[sentence.section_key] == 0 else 0.0
            scored.append((0.7 * dense + 0.3 * lexical + section_bonus, i, sentence, float(c)))
    scored.sort(key=lambda x: -x[0])
    limit = int(settings.get("answer_max_sentences", 3))
    picked: list[tuple[float, int, Sentence, float]] = []
    for item in scored:
        score, _, sentence, _ = item
        if len(picked) >= limit:
            break
        if picked and score < picked[0][0] - 0.15:
            break
        if len(sentence.text) < 6 and picked:
            continue
        grams = _bigrams(sentence.text)
        if any(len(grams & _bigrams(p[2].text)) / max(len(grams | _bigrams(p[2].text)), 1) > 0.6 for p in picked):
            continue
        picked.append(item)
    picked.sort(key=lambda x: (rank_of[x[2].section_key], x[2].start))

    hit_of = {h.section.key: h for h in chosen_hits}
    sentences, citations = [], []
    for n, (score, _, sentence, cosine) in enumerate(picked, 1):
        section = index.section_by_key[sentence.section_key]
        text = _display(sentence)
        if language == "zh-cn":
            text = tools.to_simplified(text)
        sentences.append(AnswerSentence(text=text, citations=(n,)))
        scores = hit_of[sentence.section_key].scores.to_dict()
        scores["sentence"] = round(score, 4)
        citations.append(Citation(
            n=n, title=section.title, anchor=section.anchor, url=section.url,
            snippet=sentence.text, span=(sentence.start, sentence.end), scores=scores,
        ))
    return Answer(
        question=question, language=language, refused=False, sentences=tuple(sentences),
        citations=tuple(citations), retrieval=result,
        note=ENGLISH_NOTE if language == "en" else None,
        resolved_question=resolved if resolved != question else None,
    )

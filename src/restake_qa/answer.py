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
from .retrieval import Retrieval, Retriever, relative
from .text import STOPS, TextTools, detect_language

# A pronoun that points back (「它要等多久？」, "is it safe?") and a topic shift that carries
# the topic over (「那風險呢？」, "what about the risks?").
_PRONOUN = re.compile(r"它|它們|它们|牠|\b(it|its|they|them|their)\b", re.IGNORECASE)
_CARRY_OVER = re.compile(r"^(那|那麼|那么|還有|还有)|呢[？?]?$|^(and|what about|how about)\b", re.IGNORECASE)
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
        return {
            "n": self.n,
            "title": self.title,
            "anchor": self.anchor,
            "url": self.url,
            "snippet": self.snippet,
            "span": list(self.span),
            "scores": self.scores,
        }


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
    text = question.strip()
    if not _PRONOUN.search(text) and not (_CARRY_OVER.search(text) and not tools.glossary_terms_in(text)):
        return question  # it names its own topic (「今天天氣如何？」 stays off-topic)
    for turn in reversed(history):
        terms = tools.glossary_terms_in(turn.get("question", "")) or tools.glossary_terms_in(turn.get("answer", ""))[:2]
        if terms:
            names = [t.term for t in terms if t.term not in question][:3]
            if names:
                return " ".join(names) + " " + question
            return question
    return question


def _display(sentence: Sentence) -> str:
    """A table row of a term and its description reads as a sentence: 「術語：營運者；描述：…」
    → 「營運者：…」. A row of short cells (a comparison) stays as it is."""
    m = _LABEL.match(sentence.text)
    rest = sentence.text[m.end() :] if m else ""
    if m and rest.rstrip()[-1:] in STOPS + ".":
        return f"{m.group(1)}：{rest}"
    return sentence.text


def _bigrams(text: str) -> set[str]:
    chars = [c for c in text if not c.isspace()]
    return {a + b for a, b in zip(chars, chars[1:])}


@dataclass(frozen=True)
class _Choice:
    score: float
    row: int
    sentence: Sentence
    section_rank: int


def _select_sentences(retriever: Retriever, result: Retrieval, limit: int, max_sections: int) -> list[_Choice]:
    """The sentences that best answer the question, in page order within each section.

    A sentence scores by the model's similarity to the question and the IDF-weighted share of
    the question's content words it holds, each relative to the best candidate sentence. The
    best section's sentences get a head start, a table row naming the asked term a bonus, and
    a sentence right after a chosen one (the rest of a thought) a small one. A sentence of the
    second section must match the best one outright; near-duplicates and scraps are skipped.
    """
    best = result.hits[0].scores.fused
    hits = [h for h in result.hits[:max_sections] if h is result.hits[0] or h.scores.fused >= best - 0.08]
    rank_of = {h.section.key: r for r, h in enumerate(hits)}
    rows = retriever.sentence_rows(rank_of)
    if not rows or result.query_vector is None:
        return []
    content = [t for t in dict.fromkeys(result.evidence.get("content_tokens", []))]
    idf = {t: retriever.idf(t) for t in content}
    mass = sum(idf.values()) or 1.0
    cos = retriever.sentence_cosines(rows, result.query_vector)
    top = float(cos.max())
    overlap = [sum(idf[t] for t in retriever.sentence_tokens(i) if t in idf) / mass for i in rows]
    most = max(overlap) or 1.0
    scored = []
    for i, c, lex in zip(rows, cos, overlap):
        sentence = retriever.sentence(i)
        dense = relative(float(c), top, retriever.spread)
        lexical = lex / most  # relative, like dense: the best match among the candidates is 1
        rank = rank_of[sentence.section_key]
        label = _LABEL.match(sentence.text)
        defines = label is not None and any(t in idf for t in retriever.tools.lexical_tokens(label.group(1)))
        bonus = (0.15 if rank == 0 else 0.0) + (0.1 if defines else 0.0)  # a row naming the asked term
        scored.append(_Choice(0.5 * dense + 0.5 * lexical + bonus, i, sentence, rank))
    scored.sort(key=lambda x: -x.score)
    first = scored[0].score
    picked: list[_Choice] = []
    for choice in scored:
        if len(picked) >= limit:
            break
        follows = any(p.row == choice.row - 1 and p.sentence.section_key == choice.sentence.section_key for p in picked)
        score = choice.score + (0.08 if follows else 0.0)
        if picked and score < first - (0.0 if choice.section_rank else 0.2):
            continue
        if picked and len(choice.sentence.text) < 6:
            continue
        grams = _bigrams(choice.sentence.text)
        if any(
            len(grams & _bigrams(p.sentence.text)) / max(len(grams | _bigrams(p.sentence.text)), 1) > 0.6
            for p in picked
        ):
            continue
        picked.append(choice)
    picked.sort(key=lambda x: (x.section_rank, x.sentence.start))
    return picked


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
    picked = (
        []
        if result.refused or not result.hits
        else _select_sentences(retriever, result, settings.answer_max_sentences, settings.answer_sections)
    )
    if not picked:  # refused, or nothing quotable: never an answer without a citation
        suggestions = tuple(
            {"title": h.section.title, "anchor": h.anchor, "url": h.section.url} for h in result.hits[:3]
        )
        return Answer(
            question=question,
            language=language,
            refused=True,
            sentences=(),
            citations=(),
            retrieval=result,
            message=REFUSALS[language],
            suggestions=suggestions,
            resolved_question=resolved if resolved != question else None,
        )

    chosen_hits = [h for h in result.hits if h.section.key in {p.sentence.section_key for p in picked}]
    hit_of = {h.section.key: h for h in chosen_hits}
    sentences, citations = [], []
    for n, choice in enumerate(picked, 1):
        sentence = choice.sentence
        section = retriever.section(sentence.section_key)
        text = _display(sentence)
        if language == "zh-cn":
            text = tools.to_simplified(text)
        sentences.append(AnswerSentence(text=text, citations=(n,)))
        scores = hit_of[sentence.section_key].scores.to_dict()
        scores["selection"] = round(choice.score, 4)
        citations.append(
            Citation(
                n=n,
                title=section.title,
                anchor=section.anchor,
                url=section.url,
                snippet=sentence.text,
                span=(sentence.start, sentence.end),
                scores=scores,
            )
        )
    return Answer(
        question=question,
        language=language,
        refused=False,
        sentences=tuple(sentences),
        citations=tuple(citations),
        retrieval=result,
        note=ENGLISH_NOTE if language == "en" else None,
        resolved_question=resolved if resolved != question else None,
    )

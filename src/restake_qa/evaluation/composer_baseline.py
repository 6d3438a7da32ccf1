"""The composer of the first round, kept as the baseline of the answer evaluation: the
sentences of the best one or two sections most similar to the question (the model's cosine and
the question's words, each relative to the best sentence), near-duplicates dropped, at most
three, in page order — nothing looks at what the question asks for."""

from __future__ import annotations

import re
from typing import Any

from ..retrieval import Retriever, relative

_LABEL = re.compile(r"^[^：；。]{1,12}：([^：；。]{1,24})；[^：；。]{1,12}：")


def _bigrams(text: str) -> set[str]:
    chars = [c for c in text if not c.isspace()]
    return {a + b for a, b in zip(chars, chars[1:])}


def similarity_answer(retriever: Retriever, question: str, limit: int = 3, max_sections: int = 2) -> dict[str, Any]:
    """The baseline's answer to ``question`` in the API's shape (``refused``, ``sentences``, ``citations``)."""
    result = retriever.search(question)
    if result.refused or not result.hits or result.query_vector is None:
        return {"refused": True, "sentences": [], "citations": []}
    best = result.hits[0].scores.fused
    hits = [h for h in result.hits[:max_sections] if h is result.hits[0] or h.scores.fused >= best - 0.08]
    rank_of = {h.section.key: r for r, h in enumerate(hits)}
    rows = retriever.sentence_rows(rank_of)
    if not rows:
        return {"refused": True, "sentences": [], "citations": []}
    content = list(dict.fromkeys(result.evidence.get("content_tokens", [])))
    idf = {t: retriever.idf(t) for t in content}
    mass = sum(idf.values()) or 1.0
    cos = retriever.sentence_cosines(rows, result.query_vector)
    top = float(cos.max())
    overlap = [sum(idf[t] for t in retriever.sentence_tokens(i) if t in idf) / mass for i in rows]
    most = max(overlap) or 1.0
    scored = []
    for i, c, lex in zip(rows, cos, overlap):
        sentence = retriever.sentence(i)
        label = _LABEL.match(sentence.text)
        defines = label is not None and any(t in idf for t in retriever.tools.lexical_tokens(label.group(1)))
        rank = rank_of[sentence.section_key]
        score = 0.5 * relative(float(c), top, retriever.spread) + 0.5 * lex / most + (0.15 if rank == 0 else 0.0)
        scored.append((score + (0.1 if defines else 0.0), i, sentence, rank))
    scored.sort(key=lambda x: -x[0])
    first = scored[0][0]
    picked: list[tuple[float, int, Any, int]] = []
    for choice in scored:
        if len(picked) >= limit:
            break
        follows = any(p[1] == choice[1] - 1 and p[2].section_key == choice[2].section_key for p in picked)
        if picked and choice[0] + (0.08 if follows else 0.0) < first - (0.0 if choice[3] else 0.2):
            continue
        grams = _bigrams(choice[2].text)
        if picked and (
            len(choice[2].text) < 6
            or any(len(grams & _bigrams(p[2].text)) / max(len(grams | _bigrams(p[2].text)), 1) > 0.6 for p in picked)
        ):
            continue
        picked.append(choice)
    picked.sort(key=lambda x: (x[3], x[2].start))
    return {
        "refused": False,
        "sentences": [{"text": p[2].text, "citations": [n]} for n, p in enumerate(picked, 1)],
        "citations": [{"n": n, "anchor": p[2].anchor} for n, p in enumerate(picked, 1)],
    }

"""Hybrid retrieval: dense (FAISS) + lexical (BM25 over jieba tokens), fused, per section.

Scores are put on a common 0–1 scale before fusion so that they mean the same thing for
every question, which the refusal rule needs:

* dense: cosine mapped linearly from [``dense_floor``, ``dense_ceiling``] to [0, 1]
  (multilingual-e5 cosines of related texts sit in a narrow band);
* lexical: BM25 divided by the sum of the query tokens' IDFs, i.e. the score of a chunk
  holding each query token once; tokens the corpus never uses count with the highest IDF,
  so a question about something else scores low even if it shares one common word.

``fused = dense_weight · dense + (1 − dense_weight) · lexical``; a section scores as its best
chunk. A question is refused when the best fused score is below ``refusal_threshold``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .chunking import Chunk
from .corpus import Section
from .embedding import Embedder
from .index import Index, IndexLoadError
from .text import TextTools, detect_language

DENSE_FLOOR = 0.72
DENSE_CEILING = 0.90


@dataclass(frozen=True)
class Scores:
    dense: float  # calibrated 0–1
    lexical: float  # calibrated 0–1
    fused: float
    cosine: float  # raw cosine, for the curious

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in vars(self).items()}


@dataclass(frozen=True)
class ChunkHit:
    chunk: Chunk
    scores: Scores
    matched_terms: tuple[str, ...]


@dataclass(frozen=True)
class Hit:
    """A retrieved section with its best chunks and why it was retrieved."""

    section: Section
    chunks: tuple[ChunkHit, ...]  # best first
    scores: Scores  # of the best chunk
    matched_terms: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return self.section.anchor


@dataclass(frozen=True)
class Retrieval:
    question: str
    language: str
    hits: tuple[Hit, ...]
    refused: bool
    evidence: dict[str, Any]
    timings_ms: dict[str, float] = field(default_factory=dict)


class Retriever:
    """Searches one loaded :class:`Index` with one :class:`Embedder`."""

    def __init__(self, index: Index, embedder: Embedder, tools: TextTools, settings: dict[str, Any]) -> None:
        if index.model_id != embedder.model_id:
            raise IndexLoadError(
                f"index {index.version} was built with model {index.model_id!r}, but the loaded "
                f"model is {embedder.model_id!r}; rebuild with `restake-qa build --force`"
            )
        if index.dimension != embedder.dimension:
            raise IndexLoadError(
                f"index dimension {index.dimension} differs from the model's {embedder.dimension}"
            )
        self.index = index
        self.embedder = embedder
        self.tools = tools
        self.settings = settings
        self._n = len(index.chunks)
        self._idf_unknown = math.log(1 + (self._n + 0.5) / 0.5) if self._n else 1.0
        vocab = index.lexical.vocab_dict
        self._vocab = vocab
        # document frequency per token id, from the CSC matrix's column lengths
        indptr = np.asarray(index.lexical.scores["indptr"])
        self._df = np.diff(indptr)

    def _idf(self, token: str) -> float:
        tid = self._vocab.get(token)
        df = int(self._df[tid]) if tid is not None and tid < len(self._df) else 0
        return math.log(1 + (self._n - df + 0.5) / (df + 0.5))

    def query_tokens(self, question: str) -> list[str]:
        tokens = self.tools.lexical_tokens(question)
        for term in self.tools.expand_query(question):
            if term not in tokens:
                tokens.append(term)
        return tokens

    def search(self, question: str, top_k: int | None = None) -> Retrieval:
        """Retrieve sections for ``question``, best first, with the refusal decision."""
        top_k = int(top_k or self.settings.get("top_k", 5))
        language = detect_language(question, self.tools)
        timings: dict[str, float] = {}
        if not self._n:
            return Retrieval(question, language, (), True, {"reason": "the index is empty"}, timings)

        t = time.perf_counter()
        qvec = self.embedder.embed_queries([question])
        timings["embed"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        k = min(int(self.settings.get("candidates", 30)), self._n)
        cos, ids = self.index.vectors.search(qvec, k)
        dense_ids = [int(i) for i in ids[0] if i >= 0]
        cosine = {i: float(c) for i, c in zip(dense_ids, cos[0])}
        timings["dense"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        tokens = self.query_tokens(question)
        known = [tok for tok in dict.fromkeys(tokens)]
        # English words cannot occur in the Chinese page: they neither score nor count
        # towards the scale (their meaning reaches the page through the glossary).
        scaled = [tok for tok in known if tok in self._vocab or not tok.isascii()]
        if scaled:
            raw = self.index.lexical.get_scores(known)
            scale = sum(self._idf(tok) for tok in scaled) or 1.0
        else:
            raw = np.zeros(self._n, dtype=np.float32)
            scale = 1.0
        lex_ids = [int(i) for i in np.argsort(-raw)[:k] if raw[i] > 0]
        timings["lexical"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        candidates = list(dict.fromkeys(dense_ids + lex_ids))
        missing = [i for i in candidates if i not in cosine]
        if missing:
            vecs = np.vstack([self.index.vectors.reconstruct(i) for i in missing])
            for i, c in zip(missing, vecs @ qvec[0]):
                cosine[i] = float(c)
        w = float(self.settings.get("dense_weight", 0.6))
        floor = float(self.settings.get("dense_floor", DENSE_FLOOR))
        ceiling = float(self.settings.get("dense_ceiling", DENSE_CEILING))
        query_set = set(known)
        by_section: dict[str, list[ChunkHit]] = {}
        for i in candidates:
            d = min(max((cosine[i] - floor) / (ceiling - floor), 0.0), 1.0)
            lex = min(float(raw[i]) / scale, 1.0)
            chunk = self.index.chunks[i]
            matched = tuple(tok for tok in dict.fromkeys(self.index.chunk_tokens[i]) if tok in query_set)
            hit = ChunkHit(chunk, Scores(d, lex, w * d + (1 - w) * lex, cosine[i]), matched)
            by_section.setdefault(chunk.section_key, []).append(hit)
        hits = []
        for key, chunk_hits in by_section.items():
            chunk_hits.sort(key=lambda h: -h.scores.fused)
            best = chunk_hits[0]
            terms = tuple(dict.fromkeys(t for h in chunk_hits for t in h.matched_terms))
            hits.append(Hit(self.index.section_by_key[key], tuple(chunk_hits), best.scores, terms))
        hits.sort(key=lambda h: -h.scores.fused)
        timings["fusion"] = (time.perf_counter() - t) * 1000

        best = hits[0].scores if hits else Scores(0, 0, 0, 0)
        threshold = float(self.settings.get("refusal_threshold", 0.5))
        refused = best.fused < threshold
        evidence = {
            "best_fused": round(best.fused, 4),
            "best_dense": round(best.dense, 4),
            "best_lexical": round(best.lexical, 4),
            "best_cosine": round(best.cosine, 4),
            "threshold": threshold,
            "rule": "refuse when the best fused score is below the threshold",
            "query_tokens": known,
        }
        return Retrieval(question, language, tuple(hits[:top_k]), refused, evidence, timings)

"""The lexical index: BM25 (bm25s) over the chunks' jieba tokens, behind a small interface.

Everything else asks this class for scores, document frequencies and IDFs; nothing outside it
knows how bm25s stores them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class LexicalIndex:
    """BM25 scores of token lists against the indexed documents (chunks), and their statistics."""

    def __init__(self, bm25: object, n_docs: int) -> None:
        self._bm25 = bm25
        self.n_docs = n_docs
        self._vocab: dict[str, int] = dict(bm25.vocab_dict)  # type: ignore[attr-defined]
        # document frequency per token id: the CSC matrix's column lengths
        self._df = np.diff(np.asarray(bm25.scores["indptr"]))  # type: ignore[attr-defined]

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]]) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index([list(d) for d in documents] if documents else [[""]], show_progress=False)
        return cls(bm25, len(documents))

    @classmethod
    def load(cls, folder: Path, n_docs: int) -> LexicalIndex:
        import bm25s

        return cls(bm25s.BM25.load(str(folder)), n_docs)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder))  # type: ignore[attr-defined]

    def __contains__(self, token: str) -> bool:
        return token in self._vocab

    def df(self, token: str) -> int:
        """How many documents hold ``token`` (0 for a token none holds)."""
        tid = self._vocab.get(token)
        return int(self._df[tid]) if tid is not None and tid < len(self._df) else 0

    def idf(self, token: str) -> float:
        """BM25's IDF of ``token`` (the highest for a token no document holds)."""
        df = self.df(token)
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 of ``tokens`` against every document, in document order."""
        return np.asarray(self._bm25.get_scores(list(tokens)))  # type: ignore[attr-defined]

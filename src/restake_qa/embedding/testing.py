"""A tiny deterministic embedder for plumbing tests; not a language model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .base import Progress


class HashEmbedder:
    """Bag of character bigrams hashed into ``dimension`` buckets, L2-normalised."""

    def __init__(self, dimension: int = 64, model_id: str = "test/hash-embedder") -> None:
        self.dimension = dimension
        self.model_id = model_id
        self.source = "test"
        self.precision = "fp32"
        self.calls = 0
        self.passages_embedded = 0

    def _one(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        chars = [c for c in text.lower() if not c.isspace()]
        for a, b in zip(chars, chars[1:] + [""]):
            h = int.from_bytes(hashlib.blake2b((a + b).encode(), digest_size=4).digest(), "little")
            vec[h % self.dimension] += 1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm else vec

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.array([self._one(t) for t in texts], dtype=np.float32).reshape(-1, self.dimension)

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        self.calls += 1
        self.passages_embedded += len(texts)
        if progress:
            progress(len(texts), len(texts))
        return np.array([self._one(t) for t in texts], dtype=np.float32).reshape(-1, self.dimension)

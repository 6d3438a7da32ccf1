"""The embedding model behind a narrow interface.

An :class:`Embedder` turns texts into L2-normalised float32 rows: ``embed_queries`` with the
model's query prompt, ``embed_passages`` with its passage prompt. :class:`SentenceTransformerEmbedder`
is the product's; :class:`HashEmbedder` is a tiny deterministic stand-in for plumbing tests.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    model_id: str
    source: str
    dimension: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model with query/passage prompts and a query LRU cache."""

    def __init__(
        self,
        model,
        *,
        model_id: str,
        source: str,
        batch_size: int = 32,
        query_cache_size: int = 1024,
    ) -> None:
        self.model = model
        self.model_id = model_id
        self.source = source
        self.batch_size = batch_size
        self.dimension = int(model.get_embedding_dimension())
        prompts = getattr(model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = "passage" if "passage" in prompts else (
            "document" if "document" in prompts else None
        )
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = query_cache_size
        self._cache_lock = threading.Lock()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        missing = []
        with self._cache_lock:
            for i, text in enumerate(texts):
                row = self._cache.get(text)
                if row is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = row
        if missing:
            vectors = self._encode([texts[i] for i in missing], self._query_prompt)
            with self._cache_lock:
                for i, vec in zip(missing, vectors):
                    out[i] = vec
                    if self._cache_size:
                        self._cache[texts[i]] = vec
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
        return out

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            parts.append(self._encode(batch, self._passage_prompt))
            if progress:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        if not parts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack(parts)

    def _encode(self, texts: list[str], prompt_name: str | None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = self.model.encode(
                texts,
                prompt_name=prompt_name,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class HashEmbedder:
    """Deterministic bag-of-character-bigrams embedder for plumbing tests; not a language model."""

    def __init__(self, dimension: int = 64, model_id: str = "test/hash-embedder") -> None:
        self.dimension = dimension
        self.model_id = model_id
        self.source = "test"
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

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        self.calls += 1
        self.passages_embedded += len(texts)
        if progress:
            progress(len(texts), len(texts))
        return np.array([self._one(t) for t in texts], dtype=np.float32).reshape(-1, self.dimension)


def load_embedder(settings: dict, progress: Callable[[str], None] | None = None) -> SentenceTransformerEmbedder:
    """The product's embedder, resolved as :mod:`restake_qa.models` documents."""
    from pathlib import Path

    from .models import load_sentence_transformer, resolve_model

    if settings.get("torch_threads"):
        import torch

        torch.set_num_threads(int(settings["torch_threads"]))
    cache = Path(settings["model_cache"]) if settings.get("model_cache") else None
    resolved = resolve_model(settings.get("model") or None, cache_dir=cache, progress=progress)
    model = load_sentence_transformer(resolved, backend=settings.get("model_backend", "torch"))
    return SentenceTransformerEmbedder(
        model,
        model_id=resolved.model_id,
        source=resolved.source,
        batch_size=int(settings.get("embed_batch_size", 32)),
        query_cache_size=int(settings.get("query_cache_size", 1024)),
    )

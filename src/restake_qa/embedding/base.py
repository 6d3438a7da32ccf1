"""The embedder interface, and what every real embedder shares: a cache of query embeddings
and batching by length.

An :class:`Embedder` turns texts into L2-normalised float32 rows: ``embed_queries`` with the
model's query prompt, ``embed_passages`` with its passage prompt.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

Progress = Callable[[int, int], None]


class Embedder(Protocol):
    model_id: str
    source: str
    dimension: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray: ...


class CachingEmbedder:
    """Base of the real embedders: an LRU of query embeddings (questions repeat: the chat
    page's suggestions, retries, a follow-up that is the same text) and length-sorted batches.
    Subclasses implement :meth:`_encode_queries` and :meth:`embed_passages`."""

    model_id: str
    source: str
    dimension: int
    backend: str

    def __init__(self, *, model_id: str, source: str, dimension: int, batch_size: int, query_cache_size: int) -> None:
        self.model_id = model_id
        self.source = source
        self.dimension = dimension
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = query_cache_size
        self._cache_lock = threading.Lock()

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        raise NotImplementedError

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
            vectors = self._encode_queries([texts[i] for i in missing])
            with self._cache_lock:
                for i, vec in zip(missing, vectors):
                    out[i] = vec
                    if self._cache_size:
                        self._cache[texts[i]] = vec
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
        return out


def embed_sorted(
    texts: Sequence[str],
    lengths: Sequence[int],
    batch_size: int,
    max_batch_tokens: int,
    encode: Callable[[list[str]], np.ndarray],
    dimension: int,
    progress: Progress | None,
) -> np.ndarray:
    """Embed in batches of similar length (little padding), returning rows in input order.

    A batch holds at most ``batch_size`` rows and, when ``max_batch_tokens`` is set, at most
    that many rows × longest length.
    """
    out = np.zeros((len(texts), dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    done = 0
    while done < len(order):
        size = 1
        while size < batch_size and done + size < len(order):
            if max_batch_tokens and (size + 1) * lengths[order[done + size]] > max_batch_tokens:
                break
            size += 1
        batch = order[done : done + size]
        out[batch] = encode([texts[i] for i in batch])
        done += size
        if progress:
            progress(done, len(texts))
    return out

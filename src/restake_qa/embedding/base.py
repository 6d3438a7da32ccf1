"""The embedder interface, and what every real embedder shares: a cache of query embeddings
and batching by length.

An :class:`Embedder` turns texts into L2-normalised float32 rows: ``embed_queries`` with the
model's query prompt, ``embed_passages`` with its passage prompt. Its ``precision`` ("fp32",
or "int8" for the quantised ONNX variant) is part of what an index records: vectors of one
precision are never mixed with the other's (:func:`precision_of`, :func:`vector_space`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

Progress = Callable[[int, int], None]


class Embedder(Protocol):
    model_id: str
    source: str
    dimension: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray: ...


def precision_of(embedder: object) -> str:
    """The precision an embedder's vectors come from: "fp32" unless it says otherwise."""
    return str(getattr(embedder, "precision", "fp32"))


def vector_space(embedder: object) -> str:
    """What identifies an embedder's vectors (the embedding cache's key): the model id, with
    ``@int8`` for the int8 variant (its vectors differ slightly from fp32's)."""
    model_id = str(getattr(embedder, "model_id", ""))
    precision = precision_of(embedder)
    return model_id if precision == "fp32" else f"{model_id}@{precision}"


class CachingEmbedder:
    """Base of the real embedders: an LRU of query embeddings (questions repeat: the chat
    page's suggestions, retries, a follow-up that is the same text) and length-sorted batches.
    Subclasses implement :meth:`_encode_queries` and :meth:`embed_passages`."""

    model_id: str
    source: str
    dimension: int
    backend: str
    precision: str = "fp32"

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

    def embed_batches(
        self, texts: Sequence[str], queries: Sequence[bool], stats: dict[str, Any] | None = None
    ) -> Iterator[tuple[list[int], np.ndarray]]:
        """Every text embedded — with the query prompt where ``queries[i]`` is true, else the
        passage prompt — yielded batch by batch as ``(positions, vectors)``, so that a build
        can commit each batch as it comes. Same vectors as :meth:`embed_passages` and
        :meth:`embed_queries`; the query cache is left alone. ``stats`` receives counts."""
        for flag in (False, True):
            positions = [i for i, q in enumerate(queries) if bool(q) == flag]
            for start in range(0, len(positions), self.batch_size):
                part = positions[start : start + self.batch_size]
                batch = [texts[i] for i in part]
                yield part, (self._encode_queries(batch) if flag else self.embed_passages(batch))
        if stats is not None:
            stats.update(texts=len(texts))

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


def plan_batches(lengths: Sequence[int], max_rows: int, max_batch_tokens: int) -> list[list[int]]:
    """Positions grouped into batches of similar length, shortest first: at most ``max_rows``
    rows and, when ``max_batch_tokens`` is set, at most that many rows × longest length."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches = []
    done = 0
    while done < len(order):
        size = 1
        while size < max_rows and done + size < len(order):
            if max_batch_tokens and (size + 1) * lengths[order[done + size]] > max_batch_tokens:
                break
            size += 1
        batches.append(order[done : done + size])
        done += size
    return batches


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
    done = 0
    for batch in plan_batches(lengths, batch_size, max_batch_tokens):
        out[batch] = encode([texts[i] for i in batch])
        done += len(batch)
        if progress:
            progress(done, len(texts))
    return out

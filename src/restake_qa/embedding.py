"""The embedding model behind a narrow interface.

An :class:`Embedder` turns texts into L2-normalised float32 rows: ``embed_queries`` with the
model's query prompt, ``embed_passages`` with its passage prompt. The product's model runs as
:class:`OnnxEmbedder` (onnxruntime, the default) or :class:`SentenceTransformerEmbedder` (torch);
both give the same vectors. :class:`HashEmbedder` is a tiny deterministic stand-in for plumbing
tests. Passages are embedded in batches of similar length, so short texts are not padded to the
length of a long one.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
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


class _QueryCache:
    """An LRU of query embeddings shared by the real embedders (questions repeat: the chat
    page's suggestions, retries, a follow-up that is the same text)."""

    dimension: int

    def _init_cache(self, size: int) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = size
        self._cache_lock = threading.Lock()

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
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


class SentenceTransformerEmbedder(_QueryCache):
    """A sentence-transformers model (torch) with query/passage prompts and a query LRU cache."""

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
        self.backend = "torch"
        self.batch_size = batch_size
        self.dimension = int(model.get_embedding_dimension())
        prompts = getattr(model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = "passage" if "passage" in prompts else (
            "document" if "document" in prompts else None
        )
        self._init_cache(query_cache_size)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        return _embed_sorted(texts, [len(t) for t in texts], self.batch_size, 0,
                             lambda batch: self._encode(batch, self._passage_prompt), self.dimension, progress)

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


class OnnxEmbedder(_QueryCache):
    """The model exported by :func:`restake_qa.models.export_onnx`, run with onnxruntime.

    Same texts in, same vectors out as :class:`SentenceTransformerEmbedder` (the export is
    verified against it), without torch's per-call overhead: tokenisation with the model's own
    ``tokenizer.json``, pooling and normalisation inside the graph.
    """

    #: rows × padded length per model call during builds. Small batches of long texts keep
    #: the activations in cache: measured 17 passages/s at 1,024 against 14 at 16,384 for
    #: 300-character paragraphs, and no loss for short texts (bench/).
    max_batch_tokens = 1024

    def __init__(
        self,
        folder: Path,
        *,
        model_id: str,
        source: str,
        meta: dict | None = None,
        threads: int = 0,
        batch_size: int = 32,
        query_cache_size: int = 1024,
        spinning: bool = False,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from .models import read_onnx_marker

        folder = Path(folder)
        meta = meta if meta is not None else read_onnx_marker(folder)
        if meta is None:
            raise FileNotFoundError(f"{folder} holds no complete ONNX export")
        self.folder = folder
        self.model_id = model_id
        self.source = source
        self.backend = "onnx"
        self.batch_size = batch_size
        self.dimension = int(meta["dimension"])
        prompts = meta.get("prompts") or {}
        self._query_prefix = prompts.get("query", "")
        self._passage_prefix = prompts.get("passage", prompts.get("document", ""))
        self._pad_id = int(meta.get("pad_token_id", 0))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(int(meta["max_seq_length"]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads) if threads else _usable_cpus()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads busy-wait by default; with concurrent requests on few cores that
        # burns the CPU other requests need (measured: twice the CPU per query under load).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self._session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self._init_cache(query_cache_size)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of already-prompted texts, exactly as the model sees them."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of already-prompted texts, in one padded batch."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) == 1:
            rows = [self._tokenizer.encode(texts[0]).ids]
        else:
            rows = self.token_ids(texts)
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        (out,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.ascontiguousarray(out, dtype=np.float32)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 1:
            return self.encode_texts([self._query_prefix + texts[0]])
        return self._encode_batched([self._query_prefix + t for t in texts], None)

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        return self._encode_batched([self._passage_prefix + t for t in texts], progress)

    def _encode_batched(self, texts: list[str], progress: Callable[[int, int], None] | None) -> np.ndarray:
        # one long text must not make every short one in its batch pay for 512 padded tokens
        lengths = [len(r) for r in self.token_ids(texts)] if texts else []
        return _embed_sorted(texts, lengths, self.batch_size, self.max_batch_tokens, self.encode_texts,
                             self.dimension, progress)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects CPU pinning, unlike os.cpu_count()
    except AttributeError:
        return os.cpu_count() or 1


def _embed_sorted(
    texts: Sequence[str],
    lengths: Sequence[int],
    batch_size: int,
    max_batch_tokens: int,
    encode: Callable[[list[str]], np.ndarray],
    dimension: int,
    progress: Callable[[int, int], None] | None,
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


def load_embedder(
    settings: dict, progress: Callable[[str], None] | None = None
) -> SentenceTransformerEmbedder | OnnxEmbedder:
    """The product's embedder, resolved as :mod:`restake_qa.models` documents.

    ``model_backend`` "onnx" runs the model's ONNX export (made once, see
    :func:`restake_qa.models.export_onnx`) with onnxruntime; "torch" runs it with
    sentence-transformers. Both give the same vectors; onnx is several times faster per query.
    """
    from .models import ModelBackendError, export_onnx, load_sentence_transformer, resolve_model

    backend = str(settings.get("model_backend", "onnx")).strip().lower()
    if backend not in {"torch", "onnx"}:
        raise ModelBackendError(f"model_backend must be 'torch' or 'onnx', got {backend!r} (RESTAKE_QA_MODEL_BACKEND)")
    threads = int(settings.get("model_threads") or 0)
    cache = Path(settings["model_cache"]) if settings.get("model_cache") else None
    resolved = resolve_model(settings.get("model") or None, cache_dir=cache, progress=progress)
    batch_size = int(settings.get("embed_batch_size", 32))
    cache_size = int(settings.get("query_cache_size", 1024))
    if backend == "onnx":
        try:
            import onnxruntime  # noqa: F401

            folder = export_onnx(resolved, cache_dir=cache, progress=progress)
            return OnnxEmbedder(folder, model_id=resolved.model_id, source=resolved.source, threads=threads,
                                batch_size=batch_size, query_cache_size=cache_size)
        except Exception as exc:  # noqa: BLE001 - reported, then the torch path below
            # Same vectors either way, so a model that cannot run in onnxruntime (not installed,
            # cache not writable, an architecture the export does not cover, a damaged export)
            # runs with torch.
            if progress:
                progress(f"running the model with torch instead of onnxruntime ({type(exc).__name__}: {exc})")
    if threads:
        import torch

        torch.set_num_threads(threads)
    model = load_sentence_transformer(resolved, backend="torch")
    return SentenceTransformerEmbedder(
        model, model_id=resolved.model_id, source=resolved.source, batch_size=batch_size,
        query_cache_size=cache_size,
    )

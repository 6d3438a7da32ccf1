"""The embedding model behind a narrow interface (:class:`Embedder`).

The product's model runs as :class:`OnnxEmbedder` (onnxruntime, the default) or
:class:`SentenceTransformerEmbedder` (torch); both give the same vectors. :class:`HashEmbedder`
is a tiny deterministic stand-in for plumbing tests. :func:`load_embedder` picks one from the
settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..errors import ModelBackendError
from ..models import export_onnx, load_sentence_transformer, resolve_model
from .base import CachingEmbedder, Embedder, embed_sorted
from .onnx import OnnxEmbedder
from .testing import HashEmbedder
from .torch import SentenceTransformerEmbedder

BACKENDS = ("onnx", "torch")


def load_embedder(settings: Settings, progress: Callable[[str], None] | None = None) -> CachingEmbedder:
    """The product's embedder, resolved as :mod:`restake_qa.models` documents.

    ``model_backend`` "onnx" runs the model's ONNX export (made once, see
    :func:`restake_qa.models.export_onnx`) with onnxruntime; "torch" runs it with
    sentence-transformers. Both give the same vectors; onnx is several times faster per query.
    """
    backend = settings.model_backend.strip().lower()
    if backend not in BACKENDS:
        raise ModelBackendError(f"model_backend must be 'torch' or 'onnx', got {backend!r} (RESTAKE_QA_MODEL_BACKEND)")
    cache = settings.model_cache_path
    resolved = resolve_model(settings.model, cache_dir=cache, progress=progress)
    common: dict[str, Any] = {
        "model_id": resolved.model_id,
        "source": resolved.source,
        "batch_size": settings.embed_batch_size,
        "query_cache_size": settings.query_cache_size,
    }
    if backend == "onnx":
        try:
            folder = export_onnx(resolved, cache_dir=cache, progress=progress)
            return OnnxEmbedder(folder, threads=settings.model_threads, **common)
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            # Same vectors either way, so a model that cannot run in onnxruntime (not installed,
            # cache not writable, an architecture the export does not cover, a damaged export)
            # runs with torch; the reason is shown.
            if progress:
                progress(f"running the model with torch instead of onnxruntime ({type(exc).__name__}: {exc})")
    if settings.model_threads:
        import torch

        torch.set_num_threads(settings.model_threads)
    model = load_sentence_transformer(resolved, backend="torch")
    return SentenceTransformerEmbedder(model, **common)


__all__ = [
    "BACKENDS",
    "CachingEmbedder",
    "Embedder",
    "HashEmbedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "embed_sorted",
    "load_embedder",
]

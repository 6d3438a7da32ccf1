"""The settings of restake-qa: one list, each with its default, environment variable and help.

Precedence, lowest first: the defaults below → ``RESTAKE_QA_<NAME>`` environment variables →
explicit overrides (a mapping passed by the caller, e.g. tests or CLI flags). Nothing here
reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "RESTAKE_QA_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    # where things live
    Setting("data_dir", ".restake-qa", "Folder for index builds, the embedding cache and the build lock."),
    Setting("corpus_dir", "", "Folder of markdown pages to index; empty means ./corpus, else the copy shipped in the package."),
    Setting("model", "intfloat/multilingual-e5-small", "Embedding model: a local sentence-transformers folder or a model id (see models.py for the resolution order)."),
    Setting("model_cache", "", "Folder for converted models; empty means $XDG_CACHE_HOME/restake-qa/models (or ~/.cache/…)."),
    Setting("model_backend", "onnx", "How the model runs: onnx (onnxruntime on an ONNX export made once in the model cache; ~3× faster per query) or torch (sentence-transformers); both give the same vectors."),
    Setting("model_threads", 0, "Threads the model (onnxruntime or torch) may use for one call; 0 means all cores."),
    # chunking
    Setting("chunk_target_tokens", 48, "Chunk size the chunker aims for, in jieba tokens."),
    Setting("chunk_max_tokens", 96, "Largest chunk, in jieba tokens; longer sentences are split at clause boundaries."),
    Setting("embed_batch_size", 32, "Passages embedded per model call during a build."),
    # retrieval
    Setting("top_k", 5, "Sections returned per question."),
    Setting("candidates", 30, "Chunks taken from each retriever before fusion."),
    Setting("dense_weight", 0.301, "Fusion weight of the best chunk's embedding similarity (see retrieval.py)."),
    Setting("sentence_weight", 0.044, "Fusion weight of the best single sentence's embedding similarity."),
    Setting("anchor_weight", 0.064, "Fusion weight of the similarity to the section's English name (its anchor)."),
    Setting("lexical_weight", 0.542, "Fusion weight of the best chunk's BM25 score (jieba tokens, glossary and synonyms)."),
    Setting("heading_weight", 0.049, "Fusion weight of how much of the question the section's heading names."),
    Setting("dense_spread", 0.1, "Cosine gap to the question's best section at which a similarity feature reaches 0."),
    Setting("refusal_rule", "cosine=47.123 sentence_cosine=52.463 lexical=4.483 coverage=2.768 bias=-87.632", "Linear rule over the best raw cosines, lexical score and coverage; the question is refused when it sums below 0 (`restake-qa eval --tune` fits it)."),
    Setting("query_cache_size", 1024, "Query embeddings kept in memory (LRU); 0 disables the cache."),
    # answers
    Setting("answer_max_sentences", 3, "Most sentences in one answer."),
    Setting("answer_sections", 2, "Most sections an answer may quote from."),
    # service
    Setting("host", "127.0.0.1", "Address `restake-qa serve` listens on."),
    Setting("port", 8000, "Port `restake-qa serve` listens on."),
    Setting("threads", 8, "Worker threads of the WSGI server."),
    Setting("max_question_chars", 500, "Longest question accepted, in characters."),
    Setting("max_history_turns", 10, "Most previous turns a request may carry."),
    Setting("max_body_bytes", 32768, "Largest request body accepted, in bytes."),
    Setting("rate_limit_per_minute", 600, "Requests per minute one client address may make to the API; 0 disables the limit."),
    Setting("reload_interval", 1.0, "Seconds between checks for a newly published index."),
    Setting("admin_token", "", "Bearer token for POST /api/reindex; empty disables the endpoint."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class ConfigError(ValueError):
    """A setting has a value of the wrong type or an unknown name."""


def _coerce(setting: Setting, value: Any) -> Any:
    kind = type(setting.default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            return str(value).strip().lower() in {"1", "true", "yes", "on"}
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {setting.name} ({setting.env}) must be {kind.__name__}, got {value!r}"
        ) from None


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return every setting: defaults, then ``RESTAKE_QA_*`` environment, then ``overrides``."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        if setting.env in environ:
            value = environ[setting.env]
        values[setting.name] = _coerce(setting, value)
    for name, value in (overrides or {}).items():
        key = name.lower()
        if key not in _BY_NAME:
            raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(_BY_NAME))}")
        if value is not None:
            values[key] = _coerce(_BY_NAME[key], value)
    return values


def corpus_dir(settings: Mapping[str, Any]) -> Path:
    """The corpus folder: the setting, else ./corpus, else the copy shipped inside the package."""
    if settings.get("corpus_dir"):
        return Path(settings["corpus_dir"])
    local = Path("corpus")
    if local.is_dir():
        return local
    return Path(__file__).parent / "corpus"


def settings_table() -> str:
    """The settings as a markdown table (rendered into the README)."""
    rows = ["| Setting | Environment variable | Default | What it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default != "" else "(empty)"
        rows.append(f"| `{s.name}` | `{s.env}` | {default} | {s.help} |")
    return "\n".join(rows)

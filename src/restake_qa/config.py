"""The settings of restake-qa: one typed list, each with its default and help.

:class:`Settings` is that list: every field is a setting with a default and a one-line help
(its metadata), and :data:`SETTINGS` is the same list as rows for the docs and the CLI.
Precedence, lowest first: the defaults → ``RESTAKE_QA_<NAME>`` environment variables →
explicit overrides (a mapping passed by the caller: CLI flags, tests). This module is the only
reader of the environment, and only when :func:`load_settings` is called.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "RESTAKE_QA_"
PACKAGE_DIR = Path(__file__).parent


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every setting of restake-qa (frozen; derive changed copies with :meth:`replace`)."""

    # where things live
    data_dir: str = _setting(".restake-qa", "Folder for index builds, the embedding cache and the build lock.")
    corpus_dir: str = _setting(
        "", "Folder of markdown pages to index; empty means ./corpus, else the copy shipped in the package."
    )
    model: str = _setting(
        "intfloat/multilingual-e5-small",
        "Embedding model: a local sentence-transformers folder or a model id (see models/resolve.py for the resolution order).",
    )
    model_cache: str = _setting(
        "", "Folder for converted models; empty means $XDG_CACHE_HOME/restake-qa/models (or ~/.cache/…)."
    )
    model_backend: str = _setting(
        "onnx",
        "How the model runs: onnx (onnxruntime on an ONNX export made once in the model cache; ~3× faster per query) or torch (sentence-transformers); both give the same vectors.",
    )
    model_threads: int = _setting(
        0, "Threads the model (onnxruntime or torch) may use for one call; 0 means all cores."
    )
    # chunking
    chunk_target_tokens: int = _setting(48, "Chunk size the chunker aims for, in jieba tokens.")
    chunk_max_tokens: int = _setting(
        96, "Largest chunk, in jieba tokens; longer sentences are split at clause boundaries."
    )
    embed_batch_size: int = _setting(32, "Passages embedded per model call during a build.")
    # retrieval
    top_k: int = _setting(5, "Sections returned per question.")
    candidates: int = _setting(30, "Chunks taken from each retriever before fusion.")
    dense_weight: float = _setting(0.138, "Fusion weight of the best chunk's embedding similarity (see retrieval.py).")
    sentence_weight: float = _setting(0.18, "Fusion weight of the best single sentence's embedding similarity.")
    anchor_weight: float = _setting(0.0, "Fusion weight of the similarity to the section's English name (its anchor).")
    lexical_weight: float = _setting(
        0.454, "Fusion weight of the best chunk's BM25 score (jieba tokens, glossary and synonyms)."
    )
    heading_weight: float = _setting(0.173, "Fusion weight of how much of the question the section's heading names.")
    intent_weight: float = _setting(
        0.056,
        "Fusion weight of a section heading that asks what the question asks (「再質押是什麼？」 for a definition).",
    )
    substance_weight: float = _setting(
        0.05,
        "Fusion weight of not being a reading list (links, videos) unless the question asks for reading (see retrieval.py).",
    )
    dense_spread: float = _setting(
        0.1, "Cosine gap to the question's best section at which a similarity feature reaches 0."
    )
    refusal_rule: str = _setting(
        "cosine=53.77 sentence_cosine=30.47 lexical=4.295 coverage=1.821 bias=-74.424",
        "Linear rule over the best raw cosines, lexical score and coverage; the question is refused when it sums below 0 (`restake-qa eval --tune` fits it).",
    )
    focus_strict_zipf: float = _setting(
        3.5,
        "A name, or a Chinese noun rarer than this in general language (wordfreq Zipf), that the pages never use makes a question unanswerable on its own (see refusal.py).",
    )
    focus_strict_zipf_latin: float = _setting(
        1.5,
        "The same for a Latin-script word that is not written as a name (English has more rare everyday words than Chinese nouns).",
    )
    focus_soft_zipf: float = _setting(
        4.3,
        "Focus terms commoner than this (Zipf) never decide a refusal; between the two values an unused one refuses only with weak similarity.",
    )
    focus_soft_margin: float = _setting(
        1.5,
        "How far above 0 the similarity rule must sum for a question with a moderately informative unused term to be answered.",
    )
    focus_strict_margin: float = _setting(
        4.0,
        "A rare word that is not a name refuses on its own only when the similarity rule sums below this; above it the question matches the page too well for one unknown word (an idiom, slang) to say it is about something else.",
    )
    version_scoring: str = _setting(
        "feature_max",
        "How a section's language versions combine into its score: feature_max (each feature's best version), max (the best version's fused score) or own (the asker's version only); see retrieval.py.",
    )
    simplified_source: str = _setting(
        "page",
        "What a Simplified-Chinese question is answered from: page (the page's official Simplified version) or converted (the Traditional page converted by OpenCC).",
    )
    query_cache_size: int = _setting(1024, "Query embeddings kept in memory (LRU); 0 disables the cache.")
    # answers
    answer_max_sentences: int = _setting(3, "Most sentences in one answer.")
    answer_sections: int = _setting(2, "Most sections an answer may quote from.")
    answer_unit_weights: str = _setting(
        "dense=2.358 lexical=2.242 lexical_abs=0.829 label=1.204 label_aside=-0.109 text=0.548 fused=0.549 rank0=1.082 rank1=0.401 heading=-0.026 title=0.587 cue=0.666 find=0.995 first=-0.089 row=-0.262 step=0.237 item=-0.018 alert=-0.254 video=-0.609",
        "Weights of an answer unit's features (see answer/weights.py); `restake-qa eval --tune` fits them on the answer question set.",
    )
    # service
    host: str = _setting("127.0.0.1", "Address `restake-qa serve` listens on.")
    port: int = _setting(8000, "Port `restake-qa serve` listens on.")
    threads: int = _setting(8, "Worker threads of the WSGI server.")
    max_question_chars: int = _setting(500, "Longest question accepted, in characters.")
    max_history_turns: int = _setting(10, "Most previous turns a request may carry.")
    max_body_bytes: int = _setting(32768, "Largest request body accepted, in bytes.")
    rate_limit_per_minute: int = _setting(
        600, "Requests per minute one client address may make to the API; 0 disables the limit."
    )
    reload_interval: float = _setting(1.0, "Seconds between checks for a newly published index.")
    admin_token: str = _setting(
        "",
        "Bearer token for the admin console (/admin) and the admin API (/api/reindex and cancelling it, /api/admin/…, the detailed /api/health); empty disables them.",
    )
    # operating it: the question log, reader feedback and page uploads (see README, "Operating it")
    question_log: bool = _setting(
        True,
        "Record each question asked through /api/answer (text, language, outcome, top section, index version, time; never an IP address or cookie) in questions.sqlite in the data folder, with reader feedback; false turns both off.",
    )
    question_log_days: int = _setting(
        90, "Days a logged question and its feedback are kept; older rows are deleted. 0 keeps them."
    )
    upload_max_bytes: int = _setting(262144, "Largest page file the admin console accepts, in bytes.")
    # the OpenAI-compatible API (/v1)
    openai_api_key: str = _setting(
        "", "Bearer token clients of /v1 (the OpenAI-compatible API) must send; empty means none is needed."
    )
    # corpus
    max_page_bytes: int = _setting(
        5_000_000, "Largest markdown page accepted, in bytes; a bigger page is refused with an error naming it."
    )
    # production: proxies, hosts, connection limits, logs (README "Running it in production")
    trusted_proxies: str = _setting(
        "",
        "Addresses or networks (comma-separated, e.g. 127.0.0.1,10.0.0.0/8) of reverse proxies whose X-Forwarded-For names the client; empty trusts none.",
    )
    trusted_hosts: str = _setting(
        "", "Host names (comma-separated, e.g. qa.example.org) requests must name; others get 400. Empty accepts any."
    )
    connection_limit: int = _setting(
        1000, "Most connections `restake-qa serve` keeps open; beyond it new ones wait in the listen backlog."
    )
    connections_per_client: int = _setting(
        32, "Most open connections from one client address (trusted proxies exempt); 0 disables the cap."
    )
    channel_timeout: int = _setting(
        20, "Seconds a connection may stay idle (no byte received or sent) before `restake-qa serve` closes it."
    )
    max_header_bytes: int = _setting(
        16384, "Largest request line and headers, in bytes; larger requests get 431 from the server."
    )
    access_log: bool = _setting(True, "Log one JSON line per request (method, path, status, ms, client) to stderr.")
    log_questions: bool = _setting(False, "Put the question text into the access log lines of /api/answer.")
    # speed: the model's precision (issue 17; see README, "Performance")
    model_precision: str = _setting(
        "fp32",
        "Precision the model runs at: fp32, or int8 (onnxruntime's dynamic quantisation of the ONNX export, made once in the model cache and verified against fp32; ~1.5× less CPU per text). An index records it; a mismatch is refused.",
    )
    # derived from the environment by load_settings, not a setting of its own
    default_model_cache: str = field(default="", metadata={"derived": True}, repr=False)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (names of settings), coerced like any override."""
        values = dataclasses.asdict(self)
        for name, value in changes.items():
            setting = _BY_NAME.get(name)
            if setting is None:
                raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(_BY_NAME))}")
            if value is not None:
                values[name] = _coerce(setting, value)
        return Settings(**values)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def corpus_path(self) -> Path:
        """The corpus folder: the setting, else ./corpus, else the copy shipped in the package."""
        if self.corpus_dir:
            return Path(self.corpus_dir)
        local = Path("corpus")
        return local if local.is_dir() else PACKAGE_DIR / "corpus"

    @property
    def model_cache_path(self) -> Path:
        """Where converted and exported models are kept."""
        return Path(self.model_cache or self.default_model_cache or _default_model_cache(os.environ)).expanduser()


@dataclass(frozen=True)
class Setting:
    """One setting as documented: its name, default and help (a row of :data:`SETTINGS`)."""

    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def kind(self) -> type:
        return type(self.default)


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(Settings) if "help" in f.metadata
)
_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: Any) -> Any:
    kind = setting.kind
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if isinstance(value, Path) and kind is str:
        return str(value)
    try:
        if kind is bool:
            return str(value).strip().lower() in {"1", "true", "yes", "on"}
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {setting.name} ({setting.env}) must be {kind.__name__}, got {value!r}") from None


def _default_model_cache(environ: Mapping[str, str]) -> str:
    xdg = environ.get("XDG_CACHE_HOME")
    home = environ.get("HOME")
    base = Path(xdg).expanduser() if xdg else (Path(home) if home else Path.home()) / ".cache"
    return str(base / "restake-qa" / "models")


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Every setting: defaults, then ``RESTAKE_QA_*`` in ``environ`` (default: the process
    environment), then ``overrides`` (``None`` values are ignored)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.env in environ:
            values[setting.name] = _coerce(setting, environ[setting.env])
    base = Settings(**values, default_model_cache=_default_model_cache(environ))
    return base.replace(**{name.lower(): value for name, value in (overrides or {}).items()})


def option_help(name: str, text: str | None = None) -> str:
    """A CLI option's help from the settings list: its text, environment variable and default."""
    setting = _BY_NAME[name]
    default = setting.default if setting.default != "" else "(empty)"
    return f"{text or setting.help}  [env: {setting.env}; default: {default}]"


def settings_table() -> str:
    """The settings as a markdown table (rendered into the README)."""
    rows = ["| Setting | Environment variable | Default | What it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default != "" else "(empty)"
        rows.append(f"| `{s.name}` | `{s.env}` | {default} | {s.help} |")
    return "\n".join(rows)

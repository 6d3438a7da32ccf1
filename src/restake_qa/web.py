"""The Flask application: the JSON API and the chat page.

Every error is ``{"error": {"code": str, "message": str}}`` with a 4xx/5xx status; every
request body is validated before it reaches the engine. The engine (model + index) is created
on first use and shared by all threads of the process.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from .admin import admin_api, admin_page
from .config import Settings, load_settings
from .embedding import Embedder
from .errors import RestakeQAError
from .feedback import feedback_api, record_answer
from .guard import install as install_guard
from .guard import note_job, note_question
from .health import views as health_views
from .openai_api import openai_blueprint
from .service import Engine, ReindexJobs
from .webcore import PAGE_CSP, ApiError, Operator, page_response, require_admin, web_dir
from .webcore import json_body as _json_body

api = Blueprint("api", __name__, url_prefix="/api")
pages = Blueprint("pages", __name__)
# the operator's side (admin.py, feedback.py): nested, so the API's rate limit covers it too
api.register_blueprint(admin_api)
api.register_blueprint(feedback_api)
pages.register_blueprint(admin_page)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_EXTENSION = "restake_qa"
#: Seconds before a failed engine start (e.g. no model) is tried again; until then every
#: request gets the same error at once instead of paying for another model load.
ENGINE_RETRY_SECONDS = 30.0
#: Routes the rate limit does not count: cheap reads the chat page needs (the glossary for
#: its tooltips, the table of contents, its limits) and health checks.
UNLIMITED_ENDPOINTS = {"api.health", "api.openapi", "api.glossary", "api.sections", "api.limits"}


class RateLimiter:
    """Sliding one-minute window per client address; ``per_minute`` 0 disables it."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> float | None:
        """None if allowed, else the seconds to wait."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and now - hits[0] >= 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(60 - (now - hits[0]), 0.001)
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients
                for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= 60]:
                    del self._hits[key]
            return None


@dataclass
class AppState:
    """What one app holds: its settings, the engine (made on first use), limits and jobs."""

    settings: Settings
    engine: Engine | None = None
    embedder: Embedder | None = None
    rate: RateLimiter = field(init=False)
    jobs: ReindexJobs = field(default_factory=ReindexJobs)
    engine_lock: threading.Lock = field(default_factory=threading.Lock)
    engine_failure: tuple[float, Exception] | None = None

    def __post_init__(self) -> None:
        self.rate = RateLimiter(self.settings.rate_limit_per_minute)


def create_app(
    config: Settings | Mapping[str, Any] | None = None,
    *,
    engine: Engine | None = None,
    embedder: Embedder | None = None,
) -> Flask:
    """Application factory. ``config`` is the settings (or overrides of them, see
    :mod:`restake_qa.config`). An already loaded ``engine`` (or an ``embedder`` to build one
    with) may be shared, as tests and ``restake-qa serve`` do."""
    settings = config if isinstance(config, Settings) else load_settings(config)
    app = Flask(__name__, static_folder=str(web_dir()), static_url_path="/static")
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[_EXTENSION] = state = AppState(settings, engine=engine, embedder=embedder)
    Operator.attach(app, settings, engine=get_engine, jobs=state.jobs)
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(openai_blueprint(settings, get_engine, app.extensions[_EXTENSION].rate.check))
    install_guard(app, settings, page_csp=PAGE_CSP)  # client address, hosts, headers, logs (guard.py)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)

    @app.errorhandler(RestakeQAError)
    def library_error(exc: RestakeQAError) -> Response:
        return error_response(exc.status, exc.code, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
            400: "bad_request",
            415: "unsupported_media_type",
        }.get(status, "http_error")
        message = {
            404: "no such endpoint; see /api/openapi.json",
            405: f"this endpoint allows {', '.join(sorted(getattr(exc, 'valid_methods', None) or []))} only",
            413: f"request body is over {settings.max_body_bytes} bytes",
        }.get(status, exc.description or "bad request")
        response = error_response(status, code, message)
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:  # pragma: no cover - the API validates before it works
        app.logger.exception("unexpected error")
        return error_response(500, "internal_error", "unexpected server error")

    return app


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    """The API's one error shape."""
    response = jsonify({"error": {"code": code, "message": message, **extra}})
    response.status_code = status
    if status == 429:
        response.headers["Retry-After"] = str(extra.get("retry_after", 1))
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


# shared state --------------------------------------------------------------------------------
def reindex_jobs(app: Flask) -> ReindexJobs:
    """The app's reindex jobs (``restake-qa serve`` runs its startup build as one)."""
    state: AppState = app.extensions[_EXTENSION]
    return state.jobs


def _state() -> AppState:
    state: AppState = current_app.extensions[_EXTENSION]
    return state


def get_engine() -> Engine:
    """The process's engine, created on first use (model and index load once), and checked
    for a newly published build."""
    state = _state()
    if state.engine is None:
        with state.engine_lock:
            failed = state.engine_failure
            if failed and time.monotonic() - failed[0] < ENGINE_RETRY_SECONDS:
                raise failed[1]
            if state.engine is None:
                try:
                    state.engine = Engine(state.settings, embedder=state.embedder)
                except (RestakeQAError, OSError, ImportError, RuntimeError) as exc:
                    state.engine_failure = (time.monotonic(), exc)
                    raise
    state.engine.check_for_new_build()
    return state.engine


@api.before_request
def _limit_rate() -> None:
    if request.endpoint in UNLIMITED_ENDPOINTS:
        return
    wait = _state().rate.check(request.remote_addr or "?")
    if wait is not None:
        raise ApiError(
            429, "rate_limited", f"too many requests; retry in {wait:.0f} s", retry_after=max(int(wait + 0.999), 1)
        )


# validation ----------------------------------------------------------------------------------
def _text_field(value: Any, name: str, limit: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"invalid_{name}", f"`{name}` must be a string")
    if _CONTROL.search(value):
        raise ApiError(400, "invalid_characters", f"`{name}` contains control characters")
    if required and not value.strip():
        raise ApiError(400, f"missing_{name}", f"`{name}` must not be empty")
    if len(value) > limit:
        raise ApiError(400, f"{name}_too_long", f"`{name}` is over {limit} characters")
    return value


#: The interface languages a request may name (``language``).
LANGUAGES = ("zh-tw", "zh-cn", "en")


def parse_answer_request(
    body: dict[str, Any], settings: Settings
) -> tuple[str, list[dict[str, str]], int | None, str | None]:
    if "question" not in body:
        raise ApiError(400, "missing_question", "the body needs a `question` string")
    question = _text_field(body["question"], "question", settings.max_question_chars).strip()
    history_raw = body.get("history") or []
    if not isinstance(history_raw, list):
        raise ApiError(400, "invalid_history", "`history` must be a list of {question, answer}")
    if len(history_raw) > settings.max_history_turns:
        raise ApiError(400, "history_too_long", f"`history` has over {settings.max_history_turns} turns")
    history = []
    for turn in history_raw:
        if not isinstance(turn, dict):
            raise ApiError(400, "invalid_history", "each `history` turn must be {question, answer}")
        history.append(
            {
                "question": _text_field(turn.get("question"), "question", settings.max_question_chars, required=False),
                "answer": _text_field(turn.get("answer"), "answer", 20 * settings.max_question_chars, required=False),
            }
        )
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 20):
        raise ApiError(400, "invalid_top_k", "`top_k` must be an integer from 1 to 20")
    language = body.get("language")
    if language is not None and language not in LANGUAGES:
        raise ApiError(400, "invalid_language", f"`language` must be one of {', '.join(LANGUAGES)}")
    return question, history, top_k, language


# API -----------------------------------------------------------------------------------------
@api.post("/answer")
def answer() -> Response:
    started = time.perf_counter()
    question, history, top_k, language = parse_answer_request(_json_body(), _state().settings)
    note_question(question)
    result, version = get_engine().answer(question, history=history, top_k=top_k, language=language)
    body = result.to_dict()
    body["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
    body["index_version"] = version
    body["answer_id"] = record_answer(question, body)
    return jsonify(body)


@api.get("/health")
def health() -> tuple[Response, int]:
    """Status, index version and counts for anyone; with the admin token, the details."""
    state = _state()
    admin = "Authorization" in request.headers
    if admin:
        _require_admin()
    engine_health, start_error = None, None
    try:
        engine_health = get_engine().health()
    except (RestakeQAError, OSError, ImportError, RuntimeError) as exc:  # reported, not raised
        start_error = (getattr(exc, "code", "engine_unavailable"), str(exc))
    roots = {"<data_dir>": state.settings.data_path, "<corpus>": state.settings.corpus_path}
    public, details, status = health_views(engine_health, start_error, state.jobs.latest(), roots)
    return jsonify({**public, **details} if admin else public), status


@api.get("/sections")
def sections() -> Response:
    index = get_engine().snapshot().index
    return jsonify(
        {
            "index_version": index.version,
            "sections": [
                {
                    "title": s.title,
                    "anchor": s.anchor,
                    "level": s.level,
                    "url": s.url,
                    "source": s.source,
                    "path": list(s.path),
                }
                for s in index.sections
            ],
        }
    )


@api.get("/glossary")
def glossary() -> Response:
    tools = get_engine().tools
    terms = []
    for t in tools.glossary:
        # Answers to Simplified questions come back in Simplified, so the page needs those forms too.
        simplified = dict.fromkeys(tools.to_simplified(form) for form in (t.term, *t.aliases))
        terms.append(
            {
                "term": t.term,
                "english": t.english,
                "aliases": list(t.aliases),
                "explanation": t.explanation,
                "simplified": list(simplified),
            }
        )
    return jsonify({"terms": terms})


@api.get("/limits")
def limits() -> Response:
    """The limits a client must respect (the chat page reads them instead of repeating them)."""
    settings = _state().settings
    return jsonify({"max_question_chars": settings.max_question_chars, "max_history_turns": settings.max_history_turns})


@api.get("/openapi.json")
def openapi() -> Response:
    return send_from_directory(Path(__file__).parent, "openapi.json", mimetype="application/json")


# reindex -------------------------------------------------------------------------------------
def _require_admin() -> None:
    require_admin(_state().settings.admin_token, "reindex_disabled", "reindexing over the API")


@api.post("/reindex")
def reindex() -> tuple[Response, int]:
    """Start a rebuild from the corpus folder in the background; 202 with the job's id."""
    _require_admin()
    state = _state()
    job = state.jobs.start(get_engine())
    if job is None:
        running = state.jobs.running() or {"id": "?"}
        raise ApiError(
            409,
            "reindex_running",
            "a reindex is already running; poll it or wait for it to finish",
            job_id=running["id"],
            url=f"/api/reindex/{running['id']}",
        )
    note_job(job["id"])  # for the audit line
    return jsonify({"job_id": job["id"], "status": "running", "url": f"/api/reindex/{job['id']}"}), 202


@api.get("/reindex/<job_id>")
def reindex_status(job_id: str) -> Response:
    """A reindex job: status (running, done, failed), progress lines, and the change report."""
    _require_admin()
    job = _state().jobs.get(job_id)
    if job is None:
        raise ApiError(404, "unknown_job", "no reindex job with that id; POST /api/reindex starts one")
    return jsonify(job)


@api.delete("/reindex/<job_id>")
def reindex_cancel(job_id: str) -> tuple[Response, int]:
    """Cancel a running reindex: the build stops at its next step, publishes nothing, and the
    live index serves on. 202 with the job (its status turns to ``cancelled`` when it stops)."""
    _require_admin()
    job = _state().jobs.cancel(job_id)
    if job is None:
        raise ApiError(404, "unknown_job", "no reindex job with that id; POST /api/reindex starts one")
    if job["status"] != "running":
        raise ApiError(409, "job_finished", f"the job has already ended ({job['status']})", job_status=job["status"])
    return jsonify(job), 202


# the chat page (strict CSP: see webcore.PAGE_CSP) ----------------------------------------------
@pages.get("/")
def index_page() -> Response:
    return page_response("index.html")

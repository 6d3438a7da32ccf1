"""The Flask application: the JSON API and the chat page.

Every error is ``{"error": {"code": str, "message": str}}`` with a 4xx/5xx status; every
request body is validated before it reaches the engine. The engine (model + index) is created
on first use and shared by all threads of the process.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from .config import load_settings
from .index import BuildLockedError, IndexLoadError

api = Blueprint("api", __name__, url_prefix="/api")
pages = Blueprint("pages", __name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_EXTENSION = "restake_qa"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def web_dir() -> Path:
    """The chat page's files: inside the installed package, else the repository's web/."""
    packaged = Path(__file__).parent / "web"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "web"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory. ``config`` overrides settings (see :mod:`restake_qa.config`); it
    may also carry a ready ``engine`` (tests) or an ``embedder`` to build the engine with."""
    config = dict(config or {})
    engine = config.pop("engine", None)
    embedder = config.pop("embedder", None)
    testing = bool(config.pop("TESTING", False))
    settings = load_settings(config)
    app = Flask(__name__, static_folder=str(web_dir()), static_url_path="/static")
    app.config.update(TESTING=testing, MAX_CONTENT_LENGTH=settings["max_body_bytes"])
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[_EXTENSION] = {
        "settings": settings,
        "engine": engine,
        "embedder": embedder,
        "engine_lock": threading.Lock(),
        "jobs": {},
        "jobs_lock": threading.Lock(),
        "rate": RateLimiter(settings["rate_limit_per_minute"]),
    }
    app.register_blueprint(api)
    app.register_blueprint(pages)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        body = {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
        response = jsonify(body)
        response.status_code = exc.status
        if exc.status == 429:
            response.headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
                400: "bad_request", 415: "unsupported_media_type"}.get(exc.code or 500, "http_error")
        message = {
            404: f"no such endpoint: {request.path}; see /api/openapi.json",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"request body is over {settings['max_body_bytes']} bytes",
        }.get(exc.code or 500, exc.description or "bad request")
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = exc.code or 500
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # pragma: no cover - the API validates before it works
        app.logger.exception("unexpected error")
        response = jsonify({"error": {"code": "internal_error", "message": "unexpected server error"}})
        response.status_code = 500
        return response

    return app


# shared state --------------------------------------------------------------------------------
def _state() -> dict[str, Any]:
    return current_app.extensions[_EXTENSION]


#: Seconds before a failed engine start (e.g. no model) is tried again; until then every
#: request gets the same error at once instead of paying for another model load.
ENGINE_RETRY_SECONDS = 30.0


def get_engine():
    """The process's engine, created on first use (model and index load once)."""
    state = _state()
    if state["engine"] is None:
        with state["engine_lock"]:
            failed = state.get("engine_failure")
            if failed and time.monotonic() - failed[0] < ENGINE_RETRY_SECONDS:
                raise failed[1]
            if state["engine"] is None:
                from .service import Engine

                try:
                    state["engine"] = Engine(state["settings"], embedder=state["embedder"])
                except Exception as exc:
                    state["engine_failure"] = (time.monotonic(), exc)
                    raise
    return state["engine"]


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


@api.before_request
def _limit_rate():
    # Only the work the limit protects counts: cheap reads the chat page needs (the glossary
    # for its tooltips, the table of contents) and health checks do not.
    if request.endpoint in {"api.health", "api.openapi", "api.glossary", "api.sections"}:
        return
    wait = _state()["rate"].check(request.remote_addr or "?")
    if wait is not None:
        raise ApiError(429, "rate_limited", f"too many requests; retry in {wait:.0f} s",
                       retry_after=max(int(wait + 0.999), 1))


# validation ----------------------------------------------------------------------------------
def _json_body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the request as Content-Type: application/json")
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object like {\"question\": \"…\"}")
    return body


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


def parse_answer_request(body: dict[str, Any], settings: dict[str, Any]) -> tuple[str, list[dict[str, str]], int | None]:
    if "question" not in body:
        raise ApiError(400, "missing_question", "the body needs a `question` string")
    question = _text_field(body["question"], "question", settings["max_question_chars"]).strip()
    history_raw = body.get("history") or []
    if not isinstance(history_raw, list):
        raise ApiError(400, "invalid_history", "`history` must be a list of {question, answer}")
    if len(history_raw) > settings["max_history_turns"]:
        raise ApiError(400, "history_too_long", f"`history` has over {settings['max_history_turns']} turns")
    history = []
    for turn in history_raw:
        if not isinstance(turn, dict):
            raise ApiError(400, "invalid_history", "each `history` turn must be {question, answer}")
        history.append({
            "question": _text_field(turn.get("question"), "question", settings["max_question_chars"], required=False),
            "answer": _text_field(turn.get("answer"), "answer", 20 * settings["max_question_chars"], required=False),
        })
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 20):
        raise ApiError(400, "invalid_top_k", "`top_k` must be an integer from 1 to 20")
    return question, history, top_k


# API -----------------------------------------------------------------------------------------
@api.post("/answer")
def answer():
    started = time.perf_counter()
    settings = _state()["settings"]
    question, history, top_k = parse_answer_request(_json_body(), settings)
    try:
        result, version = get_engine().answer(question, history=history, top_k=top_k)
    except IndexLoadError as exc:
        raise ApiError(503, "index_unavailable", str(exc)) from None
    body = result.to_dict()
    body["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
    body["index_version"] = version
    return jsonify(body)


@api.get("/health")
def health():
    state = _state()
    if state["engine"] is None:
        try:
            engine = get_engine()
        except Exception as exc:  # a model that cannot load is reported, not raised
            return jsonify({"status": "error", "index_version": None, "model": state["settings"]["model"],
                            "chunks": 0, "error": str(exc)}), 503
    else:
        engine = state["engine"]
    try:
        engine.snapshot  # noqa: B018 - triggers the reload check
    except IndexLoadError:
        pass
    body = engine.health()
    return jsonify(body), (200 if body["status"] == "ok" else 503)


@api.get("/sections")
def sections():
    try:
        index = get_engine().snapshot.index
    except IndexLoadError as exc:
        raise ApiError(503, "index_unavailable", str(exc)) from None
    return jsonify({
        "index_version": index.version,
        "sections": [
            {"title": s.title, "anchor": s.anchor, "level": s.level, "url": s.url, "source": s.source,
             "path": list(s.path)}
            for s in index.sections
        ],
    })


@api.get("/glossary")
def glossary():
    tools = get_engine().tools
    terms = []
    for t in tools.glossary:
        # Answers to Simplified questions come back in Simplified, so the page needs those forms too.
        simplified = dict.fromkeys(tools.to_simplified(form) for form in (t.term, *t.aliases))
        terms.append({"term": t.term, "english": t.english, "aliases": list(t.aliases),
                      "explanation": t.explanation, "simplified": list(simplified)})
    return jsonify({"terms": terms})


@api.get("/openapi.json")
def openapi():
    return send_from_directory(Path(__file__).parent, "openapi.json", mimetype="application/json")


# reindex -------------------------------------------------------------------------------------
def _require_admin() -> None:
    token = _state()["settings"]["admin_token"]
    if not token:
        raise ApiError(403, "reindex_disabled", "reindexing over the API is off; set RESTAKE_QA_ADMIN_TOKEN to enable it")
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <RESTAKE_QA_ADMIN_TOKEN>")


#: Progress lines kept per reindex job (the first ones and the latest ones), and jobs kept.
JOB_PROGRESS_LINES = 200
JOBS_KEPT = 20
# One lock for every job's fields: a status request copies a job while its build thread
# appends to it, and must see a consistent job (status, report and finished_at together).
_JOB_LOCK = threading.Lock()


def _job_update(job: dict[str, Any], **changes: Any) -> None:
    with _JOB_LOCK:
        job.update(changes)


def _job_say(job: dict[str, Any], message: str) -> None:
    with _JOB_LOCK:
        lines = job["progress"]
        lines.append(message)
        if len(lines) > JOB_PROGRESS_LINES:  # keep the start (what is built) and the latest
            del lines[20 : len(lines) - JOB_PROGRESS_LINES + 20]


@api.post("/reindex")
def reindex():
    """Start a rebuild from the corpus folder in the background; 202 with the job's id."""
    _require_admin()
    state = _state()
    engine = get_engine()
    with state["jobs_lock"]:
        running = [j for j in state["jobs"].values() if j["status"] == "running"]
        if running:
            raise ApiError(409, "reindex_running", "a reindex is already running; poll it or wait for it to finish",
                           job_id=running[0]["id"], url=f"/api/reindex/{running[0]['id']}")
        job = {"id": uuid.uuid4().hex[:12], "status": "running", "progress": [], "report": None,
               "error": None, "started_at": time.time(), "finished_at": None}
        finished = [k for k, j in state["jobs"].items() if j["status"] != "running"]
        for key in finished[: max(len(state["jobs"]) + 1 - JOBS_KEPT, 0)]:
            del state["jobs"][key]
        state["jobs"][job["id"]] = job

    def run() -> None:
        outcome: dict[str, Any]
        try:
            # A CLI build may hold the lock: wait for it rather than fail.
            report = engine.build(wait=600, progress=lambda m: _job_say(job, m))
            outcome = {"report": report.to_dict(), "status": "done"}
        except (BuildLockedError, IndexLoadError, ValueError, OSError) as exc:
            outcome = {"error": str(exc), "status": "failed"}
        except Exception as exc:  # pragma: no cover - reported to the caller, not swallowed
            outcome = {"error": f"{type(exc).__name__}: {exc}", "status": "failed"}
        _job_update(job, finished_at=time.time(), **outcome)

    threading.Thread(target=run, name=f"reindex-{job['id']}", daemon=True).start()
    return jsonify({"job_id": job["id"], "status": "running", "url": f"/api/reindex/{job['id']}"}), 202


@api.get("/reindex/<job_id>")
def reindex_status(job_id: str):
    """A reindex job: status (running, done, failed), progress lines, and the change report."""
    _require_admin()
    job = _state()["jobs"].get(job_id)
    if job is None:
        raise ApiError(404, "unknown_job", f"no reindex job {job_id}")
    with _JOB_LOCK:
        body = {**job, "progress": list(job["progress"])}
    return jsonify(body)


# the chat page -------------------------------------------------------------------------------
# The page only loads its own files and talks to its own API; even a rendering bug that let
# data reach the DOM as HTML could then not run a script.
_PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@pages.get("/")
def index_page():
    response = send_from_directory(web_dir(), "index.html")
    response.headers["Content-Security-Policy"] = _PAGE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response

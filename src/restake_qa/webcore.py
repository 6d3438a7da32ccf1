"""What the API's blueprints share: the error they raise, the JSON body check, the admin-token
check, the pages' security headers, and the operator's services (question log, engine, jobs).

``web.py`` (the answer API and the chat page), ``admin.py`` (the console and its API) and
``feedback.py`` (reader feedback) all build on this; none of them imports another's routes.
"""

from __future__ import annotations

import hmac
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Response, current_app, request, send_from_directory

from .config import Settings
from .questionlog import QuestionLog
from .service import Engine, ReindexJobs

OPERATOR = "restake_qa.operator"
current_log = logging.getLogger("restake_qa")

# The pages only load their own files and talk to their own API; even a rendering bug that let
# data reach the DOM as HTML could then not run a script.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class ApiError(Exception):
    """An error the API answers with its one error shape (``web.error_response``)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def web_dir() -> Path:
    """The pages' files: inside the installed package, else the repository's web/."""
    packaged = Path(__file__).parent / "web"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "web"


def page_response(name: str) -> Response:
    """One of the HTML pages of web/, with the strict security headers."""
    response = send_from_directory(web_dir(), name)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def json_body() -> dict[str, Any]:
    """The request's JSON object, or the API's 415/400 saying what to send."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the request as Content-Type: application/json")
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'the body must be a JSON object like {"question": "…"}')
    return body


def require_admin(token: str, disabled_code: str = "admin_disabled", what: str = "the admin API") -> None:
    """403 when no admin token is configured, 401 unless the request carries it as a Bearer token."""
    if not token:
        raise ApiError(403, disabled_code, f"{what} is off; set RESTAKE_QA_ADMIN_TOKEN to enable it")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <RESTAKE_QA_ADMIN_TOKEN>")


@dataclass
class Operator:
    """The services the console and the feedback endpoint use, one per app: the settings, the
    app's engine (a getter: made on first use), its reindex jobs and the question log."""

    settings: Settings
    engine: Callable[[], Engine]
    jobs: ReindexJobs
    log: QuestionLog | None

    @classmethod
    def attach(cls, app: Any, settings: Settings, engine: Callable[[], Engine], jobs: ReindexJobs) -> Operator:
        log = None
        if settings.question_log:
            log = QuestionLog(settings.data_path / "questions.sqlite", settings.question_log_days)
            try:
                log.purge()  # the retention period holds from the start, not from the first question
            except (sqlite3.Error, OSError) as exc:
                current_log.warning("question log: old rows not purged (%s)", exc)
        operator = cls(settings, engine, jobs, log)
        app.extensions[OPERATOR] = operator
        return operator


def operator() -> Operator:
    found: Operator = current_app.extensions[OPERATOR]
    return found

"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Chat front ends (Open WebUI, LibreChat, LobeChat, NextChat) and libraries (the ``openai``
client, LangChain, LlamaIndex) talk to an assistant through this protocol. The reply's content
is the answer as Markdown (:func:`restake_qa.answer_markdown.format_answer_markdown`); the
structured answer (the JSON of ``POST /api/answer``: citations, refusal, suggestions, evidence,
language, index version) travels in the extra field ``restake_qa`` of the completion and of the
final stream chunk. ``stream: true`` sends Server-Sent Events: a role chunk, content chunks, a
chunk with ``finish_reason: "stop"``, then ``data: [DONE]``.

Errors are the protocol's ``{"error": {"message", "type", "param", "code"}}``. The optional
bearer token (``openai_api_key``) guards both routes; chat completions count against the same
per-client rate limit as ``/api``, and bodies have the same size limit. The blueprint is made
per app by :func:`openai_blueprint`, which ``web.create_app`` registers with the app's settings,
engine and rate limiter.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .answer_markdown import format_answer_markdown
from .config import Settings
from .errors import RestakeQAError
from .openai_request import MODEL_ID, ChatRequest, ProtocolError, parse_chat_request
from .service import Engine

log = logging.getLogger("restake_qa")

#: Where a streamed reply is cut into chunks: after each run of line breaks, and after the
#: [n] markers (and the space) that end a quoted sentence.
_PIECE_END = re.compile(r"\n+|(?<=[^\s\]])(?:\[\d+\])+ ?")
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def error_body(exc: ProtocolError) -> Response:
    """The protocol's error object with its status (and Retry-After, WWW-Authenticate)."""
    response = jsonify({"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}})
    response.status_code = exc.status
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def stream_pieces(content: str) -> list[str]:
    """``content`` cut into the pieces a stream sends: lines, and sentences at their markers.
    Joined, they are ``content`` exactly."""
    cuts = [0, *(m.end() for m in _PIECE_END.finditer(content)), len(content)]
    return [content[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


class _Completion:
    """One reply's identity (id, time, index version) and its chunk and message shapes."""

    def __init__(self, version: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.version = version

    def _head(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": MODEL_ID,
            "system_fingerprint": self.version,
        }

    def message(self, content: str, answer: dict[str, Any]) -> dict[str, Any]:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
        return {**self._head("chat.completion"), "choices": [choice], "usage": None, "restake_qa": answer}

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._head("chat.completion.chunk"), "choices": [choice], **extra}


def _answer(engine: Engine, chat: ChatRequest) -> tuple[str, dict[str, Any]]:
    """The reply's Markdown content and the answer JSON (as ``POST /api/answer`` returns it)."""
    started = time.perf_counter()
    result, version = engine.answer(chat.question, history=chat.history)
    body = result.to_dict()
    body["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
    body["index_version"] = version
    return format_answer_markdown(body), body


def _stream(engine: Engine, chat: ChatRequest, completion: _Completion) -> Iterator[str]:
    """The reply as Server-Sent Events. The role chunk goes out before the answer is made, so
    a client sees the reply start at once (and a test can check nothing buffers the stream)."""
    yield _sse(completion.chunk({"role": "assistant", "content": ""}))
    try:
        content, answer = _answer(engine, chat)
    except Exception as exc:  # the status line is out: report the error in the stream, as the protocol does
        log.exception("answer failed during a stream")
        message, code = (
            (str(exc), exc.code) if isinstance(exc, RestakeQAError) else ("unexpected server error", "internal_error")
        )
        yield _sse({"error": {"message": message, "type": "server_error", "param": None, "code": code}})
    else:
        for piece in stream_pieces(content):
            yield _sse(completion.chunk({"content": piece}))
        yield _sse(completion.chunk({}, "stop", restake_qa=answer))
    yield "data: [DONE]\n\n"


def openai_blueprint(
    settings: Settings, engine: Callable[[], Engine], rate_limit: Callable[[str], float | None]
) -> Blueprint:
    """The ``/v1`` routes for one app: ``engine`` gives the app's engine (made on first use),
    ``rate_limit`` is the app's limiter (seconds to wait for a client address, or None)."""
    bp = Blueprint("openai", __name__, url_prefix="/v1")
    started = int(time.time())

    @bp.before_request
    def _guard() -> None:
        if request.endpoint == "openai.chat_completions":
            wait = rate_limit(request.remote_addr or "?")
            if wait is not None:
                retry = max(int(wait + 0.999), 1)
                raise ProtocolError(
                    429,
                    f"too many requests; retry in {retry} s",
                    code="rate_limit_exceeded",
                    type="requests",
                    retry_after=retry,
                )
        key = settings.openai_api_key
        if key:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
                raise ProtocolError(
                    401,
                    "missing or wrong API key: send Authorization: Bearer <RESTAKE_QA_OPENAI_API_KEY>",
                    code="invalid_api_key",
                )

    @bp.errorhandler(ProtocolError)
    def _protocol_error(exc: ProtocolError) -> Response:
        return error_body(exc)

    @bp.errorhandler(RestakeQAError)
    def _library_error(exc: RestakeQAError) -> Response:
        kind = "server_error" if exc.status >= 500 else "invalid_request_error"
        return error_body(ProtocolError(exc.status, str(exc), code=exc.code, type=kind))

    @bp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 413:
            message, code = f"the request body is over {settings.max_body_bytes} bytes", "request_too_large"
        else:
            message, code = exc.description or "bad request", "http_error"
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return error_body(ProtocolError(status, message, code=code, type=kind))

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:  # pragma: no cover - requests are validated first
        log.exception("unexpected error")
        return error_body(ProtocolError(500, "unexpected server error", code="internal_error", type="server_error"))

    @bp.post("/chat/completions")
    def chat_completions() -> Response:
        chat = parse_chat_request(_json_body(), settings)
        live = engine()
        version = live.snapshot().index.version  # no index: a 503 before any stream starts
        if chat.stream:
            stream = _stream(live, chat, _Completion(version))
            return Response(stream, mimetype="text/event-stream", headers=_STREAM_HEADERS)
        content, answer = _answer(live, chat)
        return jsonify(_Completion(answer["index_version"]).message(content, answer))

    @bp.get("/models")
    def models() -> Response:
        return jsonify({"object": "list", "data": [_model(started)]})

    @bp.get("/models/<model>")
    def model(model: str) -> Response:
        if model != MODEL_ID:
            raise ProtocolError(
                404, f"the model {model!r} does not exist; use {MODEL_ID!r}", param="model", code="model_not_found"
            )
        return jsonify(_model(started))

    return bp


def _model(created: int) -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": created, "owned_by": "restake-qa"}


def _json_body() -> Any:
    if request.mimetype != "application/json":
        raise ProtocolError(415, "send the request as Content-Type: application/json", code="unsupported_media_type")
    try:
        return json.loads(request.get_data(cache=False).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError(400, "the body is not valid UTF-8 JSON", code="invalid_json") from None

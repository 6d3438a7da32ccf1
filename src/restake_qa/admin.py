"""The operator's console: the ``/admin`` page and its API under ``/api/admin/``.

Every ``/api/admin/`` route needs ``Authorization: Bearer <RESTAKE_QA_ADMIN_TOKEN>`` (403 when
no token is configured, 401 for a wrong one); the blueprint is nested in ``web.api``, so the
API's rate limit counts these requests too (and slows a guessed token down). Rebuilds are the
existing ``POST /api/reindex`` jobs. The work is done by :mod:`restake_qa.content` (pages,
builds, rollback) and :mod:`restake_qa.questionlog`; this module parses requests and answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from . import content
from .build import chunker_settings
from .corpus import corpus_hash
from .errors import IndexLoadError, RestakeQAError
from .index import live_manifest
from .questionlog import KINDS
from .webcore import ApiError, Operator, operator, page_response, require_admin

admin_api = Blueprint("admin", __name__, url_prefix="/admin")
admin_page = Blueprint("admin_page", __name__)

#: Room for the multipart envelope around an uploaded page.
FORM_OVERHEAD = 16 * 1024


@admin_page.get("/admin")
def console() -> Response:
    return page_response("admin.html")


@admin_api.before_request
def _only_admins() -> None:
    require_admin(operator().settings.admin_token)


# the live index, the builds, rollback ---------------------------------------------------------
@admin_api.get("/status")
def status() -> Response:
    """The live index (version, build time, model, counts), whether the corpus changed since
    it was built, the running rebuild and the question log's figures."""
    op = operator()
    settings = op.settings
    engine = op.engine()
    manifest = live_manifest(settings.data_path)
    corpus: dict[str, Any] = {"folder": str(settings.corpus_path), "changed_since_build": None, "error": None}
    try:
        content.writable_corpus(settings.corpus_path)
        corpus["writable"] = True
    except RestakeQAError:
        corpus["writable"] = False
    try:
        digest = corpus_hash(settings.corpus_path)
        corpus["changed_since_build"] = manifest is None or digest != manifest.get("corpus_sha256")
    except RestakeQAError as exc:
        corpus["error"] = str(exc)
    index = None
    if manifest:
        index = {k: manifest.get(k) for k in ("version", "built_at", "previous", "counts", "changes")}
        index["model"] = {k: manifest["model"].get(k) for k in ("id", "source", "dimension")}
    log = op.log
    return jsonify(
        {
            "index": index,
            "health": engine.health(),
            "corpus": corpus,
            "reindex": op.jobs.running(),
            "question_log": {"enabled": log is not None, **(log.stats() if log else {})},
            "upload_max_bytes": settings.upload_max_bytes,
        }
    )


@admin_api.get("/builds")
def builds() -> Response:
    """The builds kept on disk, newest first, with their change reports."""
    return jsonify(content.list_builds(operator().settings.data_path))


def _no_running_job(op: Operator) -> None:
    running = op.jobs.running()
    if running:
        raise ApiError(
            409,
            "reindex_running",
            "a rebuild is running; wait for it to finish",
            job_id=running["id"],
            url=f"/api/reindex/{running['id']}",
        )


@admin_api.post("/rollback")
def rollback() -> Response:
    """Make the previous build live again, with the corpus files it was built from."""
    op = operator()
    _no_running_job(op)
    engine = op.engine()
    try:
        outcome = content.rollback_content(op.settings.data_path, op.settings.corpus_path, engine.embedder.model_id)
    except IndexLoadError as exc:
        raise ApiError(409, "nothing_to_roll_back", str(exc)) from None
    engine.reload()
    return jsonify(outcome)


# pages: browse the live index, preview and save uploads -----------------------------------------
@admin_api.get("/pages")
def pages() -> Response:
    """The live index's pages (one per corpus file) with their language, for the browser."""
    index = operator().engine().snapshot().index
    return jsonify({"index_version": index.version, "pages": content.page_list(index)})


@admin_api.get("/pages/<name>")
def page(name: str) -> Response:
    """Sections → chunks → sentences of one page of the live index."""
    detail = content.page_detail(operator().engine().snapshot().index, name)
    if detail is None:
        raise ApiError(404, "unknown_page", f"the live index has no page {name!r}; see /api/admin/pages")
    return jsonify(detail)


def _upload(op: Operator) -> tuple[str, bytes]:
    """The uploaded page (multipart/form-data, field ``file``): its file name and bytes."""
    limit = op.settings.upload_max_bytes
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD:
        raise ApiError(
            413, "page_too_large", f"the upload is over the {limit}-byte page limit (RESTAKE_QA_UPLOAD_MAX_BYTES)"
        )
    request.max_content_length = limit + FORM_OVERHEAD  # this route's own limit, not the API's
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send the page as multipart/form-data in a `file` field")
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "missing_file", "send the page as multipart/form-data in a `file` field")
    return upload.filename or "", upload.read(limit + 1)


def _preview(op: Operator, name: str, data: bytes) -> dict[str, Any]:
    engine = op.engine()
    try:
        index = engine.snapshot().index
    except IndexLoadError:
        index = None  # no live index: everything is new
    return content.preview(
        name,
        data,
        op.settings.corpus_path,
        index,
        engine.tools,
        chunker_settings(op.settings),
        op.settings.upload_max_bytes,
    )


@admin_api.post("/pages/preview")
def preview() -> Response:
    """Parse an uploaded page and compare it with the live page; nothing is written."""
    op = operator()
    name, data = _upload(op)
    return jsonify(_preview(op, name, data))


@admin_api.post("/pages")
def save() -> tuple[Response, int]:
    """Save an uploaded page into the corpus (the replaced file is kept) and start a rebuild."""
    op = operator()
    name, data = _upload(op)
    expected = request.form.get("expected_sha256")
    _no_running_job(op)

    def check() -> None:
        result = _preview(op, name, data)
        if result["errors"]:
            raise ApiError(422, "page_not_saved", "; ".join(result["errors"]))

    saved = content.save_page(name, data, op.settings.corpus_path, op.settings.data_path, expected, check)
    job = op.jobs.start(op.engine())
    if job is None:  # one started in between: the page is saved, the running job may miss it
        return jsonify({**saved, "job_id": None, "url": None, "note": "a rebuild was already running"}), 202
    return jsonify({**saved, "job_id": job["id"], "url": f"/api/reindex/{job['id']}"}), 202


# the question log ----------------------------------------------------------------------------
def _kind_and_limit() -> tuple[str, int]:
    kind = request.args.get("kind", "attention")
    if kind not in KINDS:
        raise ApiError(400, "invalid_kind", f"`kind` must be one of {', '.join(KINDS)}")
    raw = request.args.get("limit", "500")
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise ApiError(400, "invalid_limit", "`limit` must be an integer from 1 to 10000")
    return kind, int(raw)


def _log_or_off(op: Operator) -> Any:
    if op.log is None:
        raise ApiError(404, "question_log_off", "the question log is off (RESTAKE_QA_QUESTION_LOG=false)")
    return op.log


@admin_api.get("/questions")
def questions() -> Response:
    """Logged questions of a kind (refused and thumbs-down by default), grouped by nearest section."""
    op = operator()
    log = _log_or_off(op)
    kind, limit = _kind_and_limit()
    log.flush(timeout=2.0)
    return jsonify({"kind": kind, "stats": log.stats(), "groups": log.groups(kind, limit)})


@admin_api.get("/questions/export")
def export() -> Response:
    """The same questions as JSON lines in the evaluation's question format."""
    op = operator()
    log = _log_or_off(op)
    kind, limit = _kind_and_limit()
    log.flush(timeout=2.0)
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in log.export(kind, limit))
    day = datetime.now(UTC).strftime("%Y%m%d")
    response = Response(lines, mimetype="application/jsonl")
    response.headers["Content-Disposition"] = f'attachment; filename="questions-{kind}-{day}.jsonl"'
    return response

"""What ``GET /api/health`` says, to strangers and to the admin.

Anyone gets the status, the live index's version and counts, and short problem codes — no
paths, no messages, no model files. A caller with the admin token also gets the messages
(absolute paths cut down to names relative to the data or corpus folder), the model and the
latest reindex job with its error.

Status: ``ok``; ``degraded`` when an index serves but something needs an operator (a newer
build failed to load, the latest reindex failed); ``building`` while nothing serves yet but a
build runs; ``error`` when nothing serves (503).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: An absolute POSIX path (not the path of a URL: the slash must not follow ``:``, ``/`` or a word).
_ABSOLUTE = re.compile(r"(?<![\w.:/~>-])/(?:[^\s/'\"`:;,()<>]+/)*[^\s/'\"`:;,()<>]*")


def scrub(message: str, roots: dict[str, Path]) -> str:
    """``message`` with the folders of ``roots`` (label → folder) written as their labels and
    any other absolute path cut to its last component."""
    for label, root in roots.items():
        forms = {str(root), str(root.absolute())}
        try:
            forms.add(str(root.resolve()))
        except OSError:
            pass
        for form in sorted(forms, key=len, reverse=True):
            if form and form != ".":
                message = message.replace(form.rstrip("/"), label)
    return _ABSOLUTE.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], message)


def views(
    engine_health: dict[str, Any] | None,
    start_error: tuple[str, str] | None,
    job: dict[str, Any] | None,
    roots: dict[str, Path],
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The public view, the admin's additions, and the HTTP status.

    ``engine_health`` is :meth:`Engine.health` (None when the engine did not start; then
    ``start_error`` is its error code and message); ``job`` the latest reindex job."""
    problems: list[str] = []
    details: dict[str, Any] = {}
    if engine_health is None:
        code, message = start_error or ("engine_unavailable", "the engine did not start")
        public: dict[str, Any] = {"status": "error", "index_version": None, "chunks": 0, "sections": 0}
        problems.append(code)
        details["error"] = scrub(message, roots)
    else:
        serving = engine_health["index_version"] is not None
        public = {
            "status": "ok" if serving else "error",
            "index_version": engine_health["index_version"],
            "chunks": engine_health["chunks"],
            "sections": engine_health["sections"],
        }
        details["model"] = engine_health["model"]
        details["error"] = scrub(engine_health["error"], roots) if engine_health["error"] else None
        if engine_health["error"]:
            problems.append("newer_build_unloadable" if serving else "index_unavailable")
    if job is not None:
        public["reindex"] = {
            "status": job["status"],
            "started_at": job["started_at"],
            "finished_at": job["finished_at"],
        }
        details["reindex"] = {
            "id": job["id"],
            "status": job["status"],
            "error": scrub(job["error"], roots) if job.get("error") else None,
            "last_progress": job["progress"][-1] if job.get("progress") else None,
        }
        if job["status"] == "failed":
            problems.append("last_reindex_failed")
    if public["status"] == "ok" and problems:
        public["status"] = "degraded"
    if public["status"] == "error" and job is not None and job["status"] == "running":
        public["status"] = "building"
    public["problems"] = problems
    return public, details, 200 if public["index_version"] is not None else 503

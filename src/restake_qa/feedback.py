"""Reader feedback and the question log's hook on the answer API.

``POST /api/feedback`` takes ``{"answer_id", "vote": "up" | "down"}`` for an answer this server
gave (its ``answer_id``); the vote is stored on the answer's row of the question log. It is
rate-limited like the rest of the API (the blueprint is nested in ``web.api``).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify

from .questionlog import VOTES
from .webcore import ApiError, json_body, operator

feedback_api = Blueprint("feedback", __name__)

_ANSWER_ID = re.compile(r"[0-9a-f]{32}")


def record_answer(question: str, body: dict[str, Any]) -> str | None:
    """Log an answer given by ``POST /api/answer`` (a queue put, no disk access); its id, or
    None when the log is off or full."""
    log = operator().log
    return None if log is None else log.record_answer(question, body)


@feedback_api.post("/feedback")
def feedback() -> Response:
    """A reader's thumbs up or down on an answer; a later vote replaces an earlier one."""
    log = operator().log
    if log is None:
        raise ApiError(403, "feedback_off", "feedback is off on this server (RESTAKE_QA_QUESTION_LOG=false)")
    body = json_body()
    answer_id, vote = body.get("answer_id"), body.get("vote")
    if not isinstance(answer_id, str) or not _ANSWER_ID.fullmatch(answer_id):
        raise ApiError(400, "invalid_answer_id", "`answer_id` must be the answer's id from POST /api/answer")
    if vote not in VOTES:
        raise ApiError(400, "invalid_vote", '`vote` must be "up" or "down"')
    if not log.known(answer_id):
        raise ApiError(404, "unknown_answer", f"no logged answer {answer_id}; it may be past the retention period")
    if not log.record_feedback(answer_id, vote):
        raise ApiError(503, "log_busy", "the question log is busy; try again in a moment")
    return jsonify({"answer_id": answer_id, "vote": vote, "recorded": True})

"""The question log: what readers asked, how it was answered, and what they thought of it.

Each question asked through ``POST /api/answer`` becomes one row of ``questions.sqlite`` in the
data folder: the text, its language, answered or refused (and why), the nearest section and its
score, the index version and the time — never an IP address, a cookie or anything else about
the reader. A reader's thumbs up/down (``POST /api/feedback``) is stored on the same row.

Writes never happen on the request path: :meth:`QuestionLog.record_answer` puts the row on a
bounded queue and returns its id at once; one writer thread (started on demand, gone after a
quiet spell) commits batches in WAL mode. When the queue is full the entry is dropped and
counted, never waited for. Rows older than the retention period are deleted when the writer
starts and every hour while it runs.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("restake_qa")

#: Entries waiting for the writer; beyond this they are dropped (and counted), not waited for.
QUEUE_SIZE = 10_000
#: Entries the writer commits in one transaction at most.
BATCH = 256
#: Answer ids of this process remembered for feedback before their row is written.
RECENT_IDS = 100_000
PURGE_EVERY = 3600.0
KINDS = ("attention", "refused", "thumbs_down", "all")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY,
    asked_at REAL NOT NULL,
    question TEXT NOT NULL,
    resolved_question TEXT,
    language TEXT,
    refused INTEGER NOT NULL,
    refusal_reason TEXT,
    top_anchor TEXT,
    top_title TEXT,
    top_url TEXT,
    top_score REAL,
    nearest TEXT,
    index_version TEXT,
    took_ms REAL,
    feedback INTEGER,
    feedback_at REAL
);
CREATE INDEX IF NOT EXISTS questions_asked_at ON questions(asked_at);
"""
_WHERE = {
    "attention": "refused = 1 OR feedback = -1",
    "refused": "refused = 1",
    "thumbs_down": "feedback = -1",
    "all": "1 = 1",
}
VOTES = {"up": 1, "down": -1}


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def entry_from_answer(answer_id: str, asked_at: float, question: str, body: dict[str, Any]) -> tuple[Any, ...]:
    """The row of one answer (the API's answer JSON): only what the operator needs."""
    passages = body.get("passages") or []
    top = passages[0] if passages else {}
    refusal = body.get("refusal") or {}
    reason = refusal.get("reason") if isinstance(refusal, dict) else None
    return (
        answer_id,
        asked_at,
        question,
        body.get("resolved_question") or None,
        body.get("language"),
        1 if body.get("refused") else 0,
        reason,
        top.get("anchor"),
        top.get("title"),
        top.get("url"),
        (top.get("scores") or {}).get("fused"),
        json.dumps([p.get("anchor") for p in passages[:3]], ensure_ascii=False),
        body.get("index_version"),
        body.get("took_ms"),
    )


class QuestionLog:
    """The log in ``path`` (SQLite, WAL); ``retention_days`` 0 keeps rows forever."""

    def __init__(self, path: Path, retention_days: int, *, queue_size: int = QUEUE_SIZE, idle: float = 30.0) -> None:
        self.path = path
        self.retention_days = retention_days
        self.idle = idle
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()

    # writing (request path: a queue put) ------------------------------------------------------
    def record_answer(self, question: str, body: dict[str, Any]) -> str | None:
        """Queue the answer for the log; its id, or None when the queue is full (dropped). Only
        the row is queued (a few small fields), never the whole answer."""
        answer_id = uuid.uuid4().hex
        if not self._put(("answer", entry_from_answer(answer_id, time.time(), question, body))):
            return None
        with self._lock:
            self._recent[answer_id] = None
            if len(self._recent) > RECENT_IDS:
                self._recent.popitem(last=False)
        return answer_id

    def record_feedback(self, answer_id: str, vote: str) -> bool:
        """Queue a reader's vote ("up"/"down") on an answer (check :meth:`known` first); False
        when the queue is full."""
        return self._put(("feedback", (VOTES[vote], time.time(), answer_id)))

    def known(self, answer_id: str) -> bool:
        with self._lock:
            if answer_id in self._recent:
                return True
        return bool(self._query("SELECT 1 FROM questions WHERE id = ?", (answer_id,)))

    def _put(self, item: tuple[str, tuple[Any, ...]]) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return False
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="restake-qa-question-log", daemon=True)
                self._thread.start()
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued entry is written (or failed); True if it happened in time."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    @property
    def pending(self) -> int:
        return self._queue.unfinished_tasks

    # the writer thread ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
        return db

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        last_purge = 0.0
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self.idle)
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                batch = [first]
                while len(batch) < BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    if db is None:
                        db = self._connect()
                    if time.monotonic() - last_purge >= PURGE_EVERY or not last_purge:
                        self.purge(db=db)
                        last_purge = time.monotonic()
                    self._write(db, batch)
                except (sqlite3.Error, OSError) as exc:
                    log.warning("question log: %d entries not written (%s)", len(batch), exc)
                    with self._lock:
                        self.failed += len(batch)
                finally:
                    for _ in batch:
                        self._queue.task_done()
        finally:
            if db is not None:
                db.close()

    def _write(self, db: sqlite3.Connection, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        db.execute("BEGIN")
        try:
            for kind, values in batch:  # in order: an answer's row exists before its feedback
                if kind == "answer":
                    db.execute(
                        "INSERT OR REPLACE INTO questions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,NULL)", values
                    )
                else:
                    db.execute("UPDATE questions SET feedback = ?, feedback_at = ? WHERE id = ?", values)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _cutoff(self, now: float | None = None) -> float:
        """Rows asked before this time are past the retention period (0: none are)."""
        if self.retention_days <= 0:
            return 0.0
        return (time.time() if now is None else now) - self.retention_days * 86400

    def purge(self, now: float | None = None, db: sqlite3.Connection | None = None) -> int:
        """Delete the rows older than the retention period; the number deleted."""
        if self.retention_days <= 0 or (db is None and not self.path.exists()):
            return 0
        cutoff = self._cutoff(now)
        own = db is None
        db = db or self._connect()
        try:
            return db.execute("DELETE FROM questions WHERE asked_at < ?", (cutoff,)).rowcount
        finally:
            if own:
                db.close()

    # reading (the console) ------------------------------------------------------------------
    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if not self.path.exists():
            return []
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # no table yet
            return []
        finally:
            db.close()

    def stats(self) -> dict[str, Any]:
        rows = self._query(
            "SELECT COUNT(*) AS total, SUM(refused) AS refused, SUM(feedback = 1) AS up, "
            "SUM(feedback = -1) AS down, MIN(asked_at) AS oldest FROM questions WHERE asked_at >= ?",
            (self._cutoff(),),
        )
        row = dict(rows[0]) if rows else {}
        return {
            "questions": row.get("total") or 0,
            "refused": row.get("refused") or 0,
            "thumbs_up": row.get("up") or 0,
            "thumbs_down": row.get("down") or 0,
            "oldest": _iso(row.get("oldest")),
            "retention_days": self.retention_days,
            "pending": self.pending,
            "dropped": self.dropped,
            "failed": self.failed,
        }

    def entries(self, kind: str = "attention", limit: int = 500) -> list[dict[str, Any]]:
        """The newest ``limit`` logged questions of a kind (see :data:`KINDS`)."""
        rows = self._query(
            f"SELECT * FROM questions WHERE ({_WHERE[kind]}) AND asked_at >= ? ORDER BY asked_at DESC LIMIT ?",
            (self._cutoff(), limit),
        )
        out = []
        for row in rows:
            item = dict(row)
            item["refused"] = bool(item["refused"])
            item["nearest"] = json.loads(item["nearest"] or "[]")
            item["feedback"] = {1: "up", -1: "down"}.get(item["feedback"])
            item["asked_at"] = _iso(item["asked_at"])
            item["feedback_at"] = _iso(item["feedback_at"])
            out.append(item)
        return out

    def groups(self, kind: str = "attention", limit: int = 500) -> list[dict[str, Any]]:
        """:meth:`entries` grouped by their nearest section, the largest group first."""
        groups: dict[str, dict[str, Any]] = {}
        for item in self.entries(kind, limit):
            key = item["top_url"] or ""
            group = groups.setdefault(
                key,
                {
                    "section": {"url": item["top_url"], "anchor": item["top_anchor"], "title": item["top_title"]},
                    "questions": [],
                },
            )
            group["questions"].append(item)
        return sorted(groups.values(), key=lambda g: -len(g["questions"]))

    def export(self, kind: str = "attention", limit: int = 10_000) -> list[dict[str, Any]]:
        """Questions in the evaluation's format (``{"question", "sections", "lang"}``), one per
        distinct question, with where each came from. ``sections`` is empty: a person decides
        which sections answer it (or that none does, and it should be refused)."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for item in reversed(self.entries(kind, limit)):  # oldest first: the latest wins below
            key = (item["question"].strip(), item["language"] or "")
            reason = "thumbs_down" if item["feedback"] == "down" else "refused" if item["refused"] else "logged"
            row = merged.setdefault(
                key,
                {
                    "question": key[0],
                    "sections": [],
                    "lang": key[1],
                    "origin": {"from": "question-log", "reasons": [], "times_asked": 0, "answer_ids": []},
                },
            )
            origin = row["origin"]
            if reason not in origin["reasons"]:
                origin["reasons"].append(reason)
            origin["times_asked"] += 1
            origin["answer_ids"].append(item["id"])
            origin.update(
                refusal_reason=item["refusal_reason"],
                nearest_sections=item["nearest"],
                last_asked_at=item["asked_at"],
                index_version=item["index_version"],
            )
        return list(merged.values())

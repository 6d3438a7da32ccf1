"""The question log and reader feedback: what is recorded (and what never is), that writes
stay off the request path, the off switch, the retention period, feedback validation and its
rate limit, grouping by nearest section and the JSONL export in the evaluation's format.

Plumbing: the tiny HashEmbedder through Flask's test client (a never-refuse and an
always-refuse rule make both outcomes).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest

from restake_qa import create_app
from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.evaluation import load_questions
from restake_qa.questionlog import QuestionLog
from restake_qa.service import Engine

from helpers import CORPUS, make_settings

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READER_IP = "203.0.113.77"
COOKIE = "session=reader-cookie-value"


@pytest.fixture(scope="module")
def engine(tmp_path_factory, tools):
    tmp = tmp_path_factory.mktemp("qlog")
    settings = make_settings(tmp)
    build_index(CORPUS, settings.data_path, HashEmbedder(), settings, tools=tools)
    return Engine(settings, embedder=HashEmbedder(), tools=tools)


def make_app(engine, tmp_path, **overrides):
    """An app over the shared index whose question log lives in ``tmp_path``."""
    import shutil

    data = tmp_path / "data"
    if not (data / "CURRENT").exists():
        ignore = shutil.ignore_patterns("questions.sqlite*")
        shutil.copytree(engine.settings.data_path, data, ignore=ignore, dirs_exist_ok=True)
    options = {"data_dir": str(data), "admin_token": TOKEN, "rate_limit_per_minute": 0, "refusal_rule": "bias=1"}
    settings = engine.settings.replace(**{**options, **overrides})
    own = Engine(settings, embedder=engine.embedder, tools=engine.tools)
    app = create_app(settings, engine=own)
    return app, app.test_client()


def ask(client, question: str, **kw) -> dict:
    r = client.post("/api/answer", json={"question": question}, **kw)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def log_of(app) -> QuestionLog:
    return app.extensions["restake_qa.operator"].log


def rows(path) -> list[dict]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM questions ORDER BY asked_at")]
    finally:
        db.close()


def test_each_question_is_logged_with_its_outcome_and_nothing_about_the_reader(engine, tmp_path):
    app, client = make_app(engine, tmp_path)
    env = {"REMOTE_ADDR": READER_IP, "HTTP_X_FORWARDED_FOR": READER_IP}
    before = time.time()
    answered = ask(client, "再質押有哪些風險？", environ_base=env, headers={"Cookie": COOKIE})
    refuse_app, refuse_client = make_app(engine, tmp_path, refusal_rule="bias=-1")  # same log file
    refused = ask(refuse_client, "今天天氣如何？", environ_base=env, headers={"Cookie": COOKIE})
    assert refused["refused"] is True and answered["refused"] is False
    assert len(answered["answer_id"]) == 32 and answered["answer_id"] != refused["answer_id"]
    assert log_of(app).flush() and log_of(refuse_app).flush()

    path = tmp_path / "data" / "questions.sqlite"
    first, second = rows(path)
    assert first["id"] == answered["answer_id"] and first["question"] == "再質押有哪些風險？"
    assert first["language"] == "zh-tw" and first["refused"] == 0 and first["refusal_reason"] is None
    top = answered["passages"][0]
    assert (first["top_anchor"], first["top_url"], first["top_title"]) == (top["anchor"], top["url"], top["title"])
    assert first["top_score"] == top["scores"]["fused"]
    assert json.loads(first["nearest"]) == [p["anchor"] for p in answered["passages"][:3]]
    assert first["index_version"] == answered["index_version"] and before <= first["asked_at"] <= time.time()
    assert second["id"] == refused["answer_id"] and second["refused"] == 1 and second["question"] == "今天天氣如何？"
    # nothing about the reader: no column for it, and no value holds the address or the cookie
    db = sqlite3.connect(path)
    columns = [c[1] for c in db.execute("PRAGMA table_info(questions)")]
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    db.close()
    assert not {c for c in columns if any(w in c for w in ("ip", "addr", "cookie", "agent", "client"))}
    dump = json.dumps([first, second], ensure_ascii=False)
    assert READER_IP not in dump and "reader-cookie-value" not in dump
    assert mode == "wal"


def test_the_refusal_reason_is_logged_when_the_answer_gives_one(engine, tmp_path):
    log = QuestionLog(tmp_path / "q.sqlite", 30)
    body = {"refused": True, "language": "en", "refusal": {"reason": "uncovered_terms", "uncovered": ["Cardano"]}}
    answer_id = log.record_answer("Is Cardano restaking safe?", body)
    assert log.flush()
    (row,) = log.entries("refused")
    assert row["id"] == answer_id and row["refusal_reason"] == "uncovered_terms" and row["top_url"] is None


def test_writes_stay_off_the_request_path(engine, tmp_path):
    """While another process holds the database's write lock, answers still come back at once
    with their ids; the rows are written when the lock is released."""
    app, client = make_app(engine, tmp_path)
    ask(client, "什麼是再質押？")
    log = log_of(app)
    assert log.flush()
    blocker = sqlite3.connect(log.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        ids = [ask(client, q)["answer_id"] for q in ("再質押有哪些風險？", "什麼是 AVS？", "What is restaking?")]
        assert all(ids) and log.pending >= 3  # answered, not yet written
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert log.flush()
    assert {r["id"] for r in rows(log.path)} >= set(ids) and log.failed == 0


def test_a_full_queue_drops_entries_instead_of_waiting(tmp_path):
    log = QuestionLog(tmp_path / "q.sqlite", 30, queue_size=3)
    log.record_answer("first", {"refused": False})
    assert log.flush()
    blocker = sqlite3.connect(log.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    assert log.record_answer("stuck", {}) is not None
    deadline = time.monotonic() + 5
    while not log._queue.empty() and time.monotonic() < deadline:  # the writer took it, and waits on the lock
        time.sleep(0.01)
    outcomes: list[str | None] = []
    worker = threading.Thread(target=lambda: outcomes.extend(log.record_answer(f"q{i}", {}) for i in range(10)))
    worker.start()
    worker.join(timeout=5)
    try:
        assert not worker.is_alive()  # ten records returned while the writer is stuck
        # the queue holds three; the other seven are dropped, not waited for
        assert outcomes.count(None) == 7 and log.dropped == 7
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert log.flush()
    assert len(rows(log.path)) == 2 + sum(1 for x in outcomes if x)


def test_the_off_switch(engine, tmp_path):
    app, client = make_app(engine, tmp_path, question_log=False)
    body = ask(client, "再質押有哪些風險？")
    assert body["answer_id"] is None and log_of(app) is None
    r = client.post("/api/feedback", json={"answer_id": "0" * 32, "vote": "down"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "feedback_off"
    assert client.get("/api/admin/questions", headers=AUTH).get_json()["error"]["code"] == "question_log_off"
    assert client.get("/api/admin/status", headers=AUTH).get_json()["question_log"] == {"enabled": False}
    assert not list((tmp_path / "data").glob("questions.sqlite*"))


def test_the_retention_period(engine, tmp_path):
    log = QuestionLog(tmp_path / "data" / "questions.sqlite", 30)
    ids = [log.record_answer(q, {"refused": True}) for q in ("old", "recent", "new")]
    assert log.flush()
    db = sqlite3.connect(log.path)
    day = 86400
    db.executemany(
        "UPDATE questions SET asked_at = ? WHERE id = ?",
        [(time.time() - 31 * day, ids[0]), (time.time() - 29 * day, ids[1])],
    )
    db.commit()
    db.close()
    assert [r["question"] for r in log.entries("all")] == ["new", "recent"]  # past the period: never shown
    # an app started over this folder deletes the rows past the period at once
    app, client = make_app(engine, tmp_path, question_log_days=30)
    assert sorted(r["question"] for r in rows(log.path)) == ["new", "recent"]
    status = client.get("/api/admin/status", headers=AUTH).get_json()
    assert status["health"]["status"] == "ok"
    stats = status["question_log"]
    assert stats["questions"] == 2 and stats["retention_days"] == 30
    # feedback on a purged answer is refused: its row is gone
    r = client.post("/api/feedback", json={"answer_id": ids[0], "vote": "down"})
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "unknown_answer"
    # the writer purges as it runs too; 0 days keeps everything
    assert QuestionLog(log.path, 28).purge() == 1 and QuestionLog(log.path, 0).purge(now=time.time() + 400 * day) == 0
    assert [r["question"] for r in rows(log.path)] == ["new"]


def test_feedback_is_stored_next_to_the_question_and_validated(engine, tmp_path):
    app, client = make_app(engine, tmp_path)
    body = ask(client, "再質押有哪些風險？")
    r = client.post("/api/feedback", json={"answer_id": body["answer_id"], "vote": "up"})
    assert r.status_code == 200 and r.get_json() == {"answer_id": body["answer_id"], "vote": "up", "recorded": True}
    client.post("/api/feedback", json={"answer_id": body["answer_id"], "vote": "down"})  # a change of mind
    assert log_of(app).flush()
    (row,) = rows(log_of(app).path)
    assert row["feedback"] == -1 and row["feedback_at"] >= row["asked_at"]
    for payload, status, code in [
        ({"answer_id": body["answer_id"], "vote": "meh"}, 400, "invalid_vote"),
        ({"answer_id": "../../etc", "vote": "down"}, 400, "invalid_answer_id"),
        ({"answer_id": 7, "vote": "down"}, 400, "invalid_answer_id"),
        ({"vote": "down"}, 400, "invalid_answer_id"),
        ({"answer_id": "f" * 32, "vote": "down"}, 404, "unknown_answer"),
    ]:
        r = client.post("/api/feedback", json=payload)
        assert r.status_code == status and r.get_json()["error"]["code"] == code, (payload, r.get_json())
    r = client.post("/api/feedback", data="answer_id=x", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415
    # rate-limited like the API
    app, client = make_app(engine, tmp_path, rate_limit_per_minute=2)
    codes = [
        client.post("/api/feedback", json={"answer_id": body["answer_id"], "vote": "up"}).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_the_console_groups_refused_and_thumbs_down_questions_and_exports_them(engine, tmp_path):
    app, client = make_app(engine, tmp_path)
    refuse_app, refuse_client = make_app(engine, tmp_path, refusal_rule="bias=-1")
    refused = [ask(refuse_client, q) for q in ("今天天氣如何？", "今天天氣如何？", "How do I bake bread?")]
    liked, disliked = ask(client, "什麼是再質押？"), ask(client, "再質押有哪些風險？")
    client.post("/api/feedback", json={"answer_id": liked["answer_id"], "vote": "up"})
    client.post("/api/feedback", json={"answer_id": disliked["answer_id"], "vote": "down"})
    for a in (app, refuse_app):
        assert log_of(a).flush()

    listed = client.get("/api/admin/questions", headers=AUTH).get_json()
    assert listed["stats"]["questions"] == 5 and listed["stats"]["thumbs_down"] == 1 and listed["stats"]["refused"] == 3
    got = {q["id"]: group["section"]["url"] for group in listed["groups"] for q in group["questions"]}
    assert set(got) == {*(a["answer_id"] for a in refused), disliked["answer_id"]}  # not the liked one
    for body in [*refused, disliked]:
        assert got[body["answer_id"]] == body["passages"][0]["url"]  # grouped by the nearest section
    sizes = [len(g["questions"]) for g in listed["groups"]]
    assert sizes == sorted(sizes, reverse=True)
    down = client.get("/api/admin/questions?kind=thumbs_down", headers=AUTH).get_json()["groups"]
    assert [q["question"] for g in down for q in g["questions"]] == ["再質押有哪些風險？"]
    assert client.get("/api/admin/questions?kind=nope", headers=AUTH).status_code == 400
    assert client.get("/api/admin/questions?limit=0", headers=AUTH).status_code == 400

    r = client.get("/api/admin/questions/export", headers=AUTH)
    assert r.status_code == 200 and r.mimetype == "application/jsonl"
    assert "attachment" in r.headers["Content-Disposition"]
    path = tmp_path / "export.jsonl"
    path.write_bytes(r.data)
    questions = load_questions(path)  # the evaluation reads it as it is
    assert sorted(q.question for q in questions) == sorted(
        ["今天天氣如何？", "How do I bake bread?", "再質押有哪些風險？"]
    )
    lines = {row["question"]: row for row in map(json.loads, r.get_data(as_text=True).splitlines())}
    weather = lines["今天天氣如何？"]
    assert weather["sections"] == [] and weather["lang"] == "zh-tw" and lines["How do I bake bread?"]["lang"] == "en"
    assert weather["origin"]["from"] == "question-log" and weather["origin"]["times_asked"] == 2
    assert weather["origin"]["reasons"] == ["refused"] and len(weather["origin"]["answer_ids"]) == 2
    assert lines["再質押有哪些風險？"]["origin"]["reasons"] == ["thumbs_down"]
    assert lines["再質押有哪些風險？"]["origin"]["nearest_sections"] == [p["anchor"] for p in disliked["passages"][:3]]

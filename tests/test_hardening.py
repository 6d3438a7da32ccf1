"""Hardening: mixed load against the real server, faults at start, limits over real HTTP.

Everything talks to 127.0.0.1 with bounded request counts and timeouts. The load test uses
the real model and index (conftest's ``live_server``); the fault tests start
``restake-qa serve`` as a subprocess (real model) over index folders damaged on purpose;
the limit tests use the tiny embedder, since limits are about HTTP, not the model.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from restake_qa import create_app
from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.evaluation import load_questions
from restake_qa.index import current_path
from restake_qa.models import DEFAULT_MODEL_ID
from restake_qa.service import Engine

from helpers import CORPUS, QUESTIONS, LiveServer, free_port, make_settings

TIMEOUT = 60  # seconds for any one HTTP exchange


# ------------------------------------------------------------------------------ mixed load


def _request_mix(n: int, questions: list[str], seed: int = 8) -> list[tuple[str, int, bytes]]:
    """``n`` requests as (kind, expected status, raw HTTP bytes), shuffled deterministically."""
    rng = random.Random(seed)

    def post(body: bytes, content_type: str = "application/json", path: str = "/api/answer") -> bytes:
        return (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    def ask(body: object) -> bytes:
        return post(json.dumps(body, ensure_ascii=False).encode())

    makers = [  # (kind, expected status, weight, make)
        ("valid", 200, 20, lambda: ask({"question": rng.choice(questions)})),
        (
            "valid with history",
            200,
            6,
            lambda: ask({"question": "那風險呢？", "history": [{"question": rng.choice(questions), "answer": "……"}]}),
        ),
        ("malformed json", 400, 8, lambda: post(b'{"question": "\xe5\x86\x8d\xe8\xb3\xaa')),
        ("wrong type", 400, 6, lambda: ask({"question": rng.choice([1, None, [], {"a": 1}, True])})),
        ("not an object", 400, 4, lambda: ask(rng.choice([[], "再質押", 3.5, None]))),
        ("missing question", 400, 4, lambda: ask({"q": "再質押"})),
        ("question too long", 400, 6, lambda: ask({"question": "再" * 600})),
        (
            "history too long",
            400,
            4,
            lambda: ask({"question": "再質押", "history": [{"question": "q", "answer": "a"}] * 11}),
        ),
        ("control characters", 400, 3, lambda: ask({"question": "再質押\x00\x07"})),
        ("deeply nested", 400, 3, lambda: post(b"[" * 5000 + b"]" * 5000)),
        ("oversized body", 413, 6, lambda: ask({"question": "再質押", "pad": "x" * 40_000})),
        ("random bytes as json", 400, 8, lambda: post(rng.randbytes(rng.randint(1, 3000)))),
        ("random bytes, other type", 415, 4, lambda: post(rng.randbytes(200), "application/octet-stream")),
        ("empty body", 400, 3, lambda: post(b"")),
        (
            "wrong method",
            405,
            6,
            lambda: rng.choice([b"GET", b"PUT", b"DELETE"]) + b" /api/answer HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ),
        ("unknown path", 404, 4, lambda: post(b'{"question": "x"}', path="/api/nope")),
        ("garbage request line", 400, 4, lambda: rng.randbytes(300).replace(b"\n", b" ") + b"\r\n\r\n"),
        ("health", 200, 3, lambda: b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    ]
    weights = [w for _, _, w, _ in makers]
    out = []
    for _ in range(n):
        kind, status, _, make = rng.choices(makers, weights)[0]
        out.append((kind, status, make()))
    return out


def _exchange(port: int, raw: bytes) -> tuple[int, bytes]:
    """Send one raw request on a fresh connection; return (status, body). Raises if the
    server drops the connection without a complete response."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock, method="GET" if raw.startswith(b"GET") else "POST")
        response.begin()
        return response.status, response.read()


def test_mixed_load_has_no_5xx_no_dropped_connection_and_stable_memory(live_server):
    port = live_server.port
    questions = [q.question for q in load_questions(QUESTIONS)]
    # warm-up: caches, allocator arenas and thread pools grow to their working size once
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: _exchange(port, item[2]), _request_mix(300, questions, seed=1)))
    process = psutil.Process()
    start_rss = process.memory_info().rss

    mix = _request_mix(2000, questions)
    outcomes: list[tuple[str, int, object]] = []
    lock = threading.Lock()

    def run(item: tuple[str, int, bytes]) -> None:
        kind, expected, raw = item
        try:
            status, body = _exchange(port, raw)
            got: object = status
            if status == 200 and kind.startswith("valid"):
                data = json.loads(body)
                assert "answer" in data and "citations" in data, body[:200]
            elif status >= 400 and kind not in {"garbage request line"}:
                error = json.loads(body)["error"]
                assert error["code"] and error["message"], body[:200]
        except (OSError, http.client.HTTPException, ValueError, AssertionError) as exc:
            got = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes.append((kind, expected, got))

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(run, mix))
    seconds = time.monotonic() - started
    end_rss = process.memory_info().rss

    by_kind: dict[str, dict[str, int]] = {}
    for kind, _, got in outcomes:
        by_kind.setdefault(kind, {})
        by_kind[kind][str(got)] = by_kind[kind].get(str(got), 0) + 1
    print(
        f"\n2000 mixed requests at concurrency 16 in {seconds:.1f} s; "
        f"resident memory {start_rss / 2**20:.0f} MB at start, {end_rss / 2**20:.0f} MB at end"
    )
    for kind, counts in sorted(by_kind.items()):
        print(f"  {kind:<26} {counts}")

    assert len(outcomes) == 2000
    dropped = [(k, g) for k, _, g in outcomes if not isinstance(g, int)]
    assert not dropped, dropped[:5]
    assert not [(k, g) for k, _, g in outcomes if g >= 500]
    wrong = [(k, e, g) for k, e, g in outcomes if g != e]
    assert not wrong, wrong[:5]
    # no growth beyond noise: 2000 requests must not leave their bodies or answers behind
    # (measured: +1 MB per further 1000 once warm)
    assert end_rss - start_rss < max(48 * 2**20, 0.05 * start_rss), (start_rss, end_rss)


# ------------------------------------------------------------------------------ faults at start


def _fake_real_index(data_dir: Path, model_id: str = DEFAULT_MODEL_ID) -> Path:
    """A complete index of the real corpus, built fast with the tiny embedder under
    ``model_id`` (dimension 384, like the real model); returns the live build folder."""
    settings = make_settings(data_dir.parent, data_dir=str(data_dir))
    build_index(CORPUS, data_dir, HashEmbedder(dimension=384, model_id=model_id), settings)
    return current_path(data_dir)


def _serve(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTAKE_QA_") or k == "RESTAKE_QA_MODEL_CACHE"}
    env.update({"RESTAKE_QA_CORPUS_DIR": str(CORPUS), "RESTAKE_QA_DATA_DIR": str(data_dir)})
    argv = [sys.executable, "-m", "restake_qa.cli", "serve", "--port", str(free_port()), *args]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"serve did not stop with an error; it printed:\n{err[-2000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _assert_one_line_error(result: subprocess.CompletedProcess, *phrases: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), result.stderr[-2000:]
    for phrase in phrases:
        assert phrase in last, last
    return last


@pytest.mark.slow
def test_serve_without_an_index_says_how_to_build(tmp_path):
    _assert_one_line_error(_serve(tmp_path / "data", "--no-build"), "no index in", "restake-qa build")


@pytest.mark.slow
def test_serve_with_a_missing_index_file(tmp_path):
    build = _fake_real_index(tmp_path / "data")
    (build / "chunks.jsonl").unlink()
    _assert_one_line_error(_serve(tmp_path / "data", "--no-build"), "chunks.jsonl is missing", "build --force")


@pytest.mark.slow
def test_serve_with_a_corrupted_index_file_even_when_asked_to_build(tmp_path):
    build = _fake_real_index(tmp_path / "data")
    path = build / "vectors.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    # the corpus has not changed, so the build is "up to date" and cannot mask the damage
    _assert_one_line_error(_serve(tmp_path / "data"), "vectors.faiss is corrupted", "build --force")


@pytest.mark.slow
def test_serve_with_a_manifest_that_is_not_json(tmp_path):
    build = _fake_real_index(tmp_path / "data")
    (build / "manifest.json").write_text('{"format_version": 1, "trunc', encoding="utf-8")
    _assert_one_line_error(_serve(tmp_path / "data", "--no-build"), "manifest.json is not valid JSON")


@pytest.mark.slow
def test_serve_with_an_index_from_another_model(tmp_path):
    _fake_real_index(tmp_path / "data", model_id="someone/other-model")
    _assert_one_line_error(
        _serve(tmp_path / "data", "--no-build"), "built with model 'someone/other-model'", DEFAULT_MODEL_ID
    )


def test_serve_on_a_taken_port_fails_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTAKE_QA_")}
        result = subprocess.run(
            [sys.executable, "-m", "restake_qa.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    _assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "another --port")
    assert "Loading" not in result.stderr and "serving" not in result.stderr  # failed before the model


def test_health_reports_an_unloadable_index_and_recovers(tmp_path):
    data = tmp_path / "data"
    build = _fake_real_index(data)
    (build / "sentences.npy").write_bytes(b"not numpy")
    embedder = HashEmbedder(dimension=384, model_id=DEFAULT_MODEL_ID)
    app = create_app(
        {
            "data_dir": str(data),
            "corpus_dir": str(CORPUS),
            "reload_interval": 0.0,
            "rate_limit_per_minute": 0,
            "admin_token": "t",
        },
        embedder=embedder,
    )
    server = LiveServer(app)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        conn.request("GET", "/api/health", headers={"Authorization": "Bearer t"})  # the admin view: details
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 503
        assert body["status"] == "error" and "sentences.npy is corrupted" in body["error"]
        assert str(tmp_path) not in body["error"]  # paths relative to the data folder
        conn.request(
            "POST",
            "/api/answer",
            body=json.dumps({"question": "再質押是什麼？"}),
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        error = json.loads(response.read())["error"]
        assert response.status == 503 and error["code"] == "index_unavailable"

        # a good build published into the folder is picked up without a restart
        build_index(CORPUS, data, embedder, make_settings(tmp_path, data_dir=str(data)), force=True)
        conn.request("GET", "/api/health", headers={"Authorization": "Bearer t"})
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 200 and body["status"] == "ok" and body["error"] is None
        conn.close()
    finally:
        server.stop()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_embedding_cache_file_is_set_aside_and_the_build_re_embeds(tmp_path, damage):
    # (damaged rows inside a sound file: test_index.py::test_corrupt_cache_entries_are_detected_and_re_embedded)
    data = tmp_path / "data"
    settings = make_settings(tmp_path, data_dir=str(data))
    first = build_index(CORPUS, data, HashEmbedder(), settings)
    cache = data / "cache" / "embeddings.sqlite"
    raw = cache.read_bytes()
    cache.write_bytes(b"not a database " * 500 if damage == "garbage" else raw[: len(raw) // 2])
    messages: list[str] = []
    report = build_index(CORPUS, data, HashEmbedder(), settings, force=True, progress=messages.append)
    # nothing comes from the damaged file (what is reused is a text the build holds twice, as at first)
    assert report.embedded == first.embedded and report.reused == first.reused
    assert any("embedding cache was damaged" in m for m in messages)
    assert len(list(cache.parent.glob("embeddings.sqlite.damaged-*"))) == 1
    again = build_index(CORPUS, data, HashEmbedder(), settings, force=True)
    assert again.embedded == 0 and again.reused == first.embedded + first.reused  # the new cache works


# ------------------------------------------------------------------------------ limits over HTTP


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory, tools):
    tmp = tmp_path_factory.mktemp("limits")
    settings = make_settings(tmp)
    embedder = HashEmbedder()
    build_index(CORPUS, settings.data_path, embedder, settings, tools=tools)
    return Engine(settings, embedder=embedder, tools=tools)


@pytest.fixture
def limited_server(small_engine, monkeypatch):
    """The app with small limits, set through the environment as an operator would."""
    for name, value in {
        "MAX_BODY_BYTES": "2048",
        "MAX_QUESTION_CHARS": "40",
        "MAX_HISTORY_TURNS": "2",
        "RATE_LIMIT_PER_MINUTE": "0",
    }.items():
        monkeypatch.setenv(f"RESTAKE_QA_{name}", value)
    server = LiveServer(create_app(engine=small_engine))
    server.start()
    yield server
    server.stop()


def _post(port: int, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/api/answer", body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        conn.close()


def _ask(port: int, payload: dict) -> tuple[int, dict, dict[str, str]]:
    return _post(port, json.dumps(payload, ensure_ascii=False).encode())


def test_question_and_history_limits_come_from_the_settings(limited_server):
    port = limited_server.port
    assert _ask(port, {"question": "再" * 40})[0] == 200
    status, body, _ = _ask(port, {"question": "再" * 41})
    assert status == 400 and body["error"]["code"] == "question_too_long" and "40" in body["error"]["message"]
    turn = {"question": "再質押是什麼？", "answer": "……"}
    assert _ask(port, {"question": "那風險呢？", "history": [turn] * 2})[0] == 200
    status, body, _ = _ask(port, {"question": "那風險呢？", "history": [turn] * 3})
    assert status == 400 and body["error"]["code"] == "history_too_long"


def test_body_size_limit_with_and_without_content_length(limited_server):
    port = limited_server.port
    status, body, _ = _post(port, json.dumps({"question": "再質押", "pad": "x" * 2100}).encode())
    assert status == 413 and body["error"]["code"] == "body_too_large" and "2048" in body["error"]["message"]

    def chunks():
        yield b'{"question": "'
        for _ in range(30):
            yield b"x" * 100
        yield b'"}'

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request(
        "POST", "/api/answer", body=chunks(), headers={"Content-Type": "application/json"}, encode_chunked=True
    )
    response = conn.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"]["code"] == "body_too_large"
    conn.close()


def test_rate_limit_answers_429_with_retry_after(small_engine, monkeypatch):
    monkeypatch.setenv("RESTAKE_QA_RATE_LIMIT_PER_MINUTE", "5")
    server = LiveServer(create_app(engine=small_engine))
    server.start()
    try:
        statuses = [_ask(server.port, {"question": "再質押是什麼？"})[0] for _ in range(5)]
        assert statuses == [200] * 5
        status, body, headers = _ask(server.port, {"question": "再質押是什麼？"})
        assert status == 429 and body["error"]["code"] == "rate_limited"
        assert 1 <= int(headers["Retry-After"]) <= 60
        # health stays reachable for monitors while a client is limited
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        conn.request("GET", "/api/health")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.stop()

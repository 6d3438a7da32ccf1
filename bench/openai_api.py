"""What the OpenAI-compatible API costs over POST /api/answer, over real HTTP.

    .venv/bin/python bench/openai_api.py [--quick]

Builds the page's index in a temporary folder, starts `restake-qa serve` on a free port (no
query cache, no rate limit) and asks every dev-set question three ways, interleaved, each on
its own keep-alive connection: ``POST /api/answer``, ``POST /v1/chat/completions``, and the
same with ``stream: true`` (time to the first event and to ``data: [DONE]``). Prints medians
and 95th percentiles in milliseconds, and the ratios to /api/answer.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from restake_qa.evaluation import load_questions

from _util import ROOT, ServerProcess, free_port, request, say, stats


def _stream(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, float, int]:
    """Milliseconds to the first event and to [DONE], and the number of events."""
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    first = None
    events = 0
    while line := response.readline():
        if line.startswith(b"data: "):
            events += 1
            first = first or (time.perf_counter() - started) * 1000
            if line.startswith(b"data: [DONE]"):
                break
    response.read()
    assert first is not None
    return first, (time.perf_counter() - started) * 1000, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 questions instead of the whole dev set")
    args = parser.parse_args()
    questions = [q.question for q in load_questions(ROOT / "tests" / "data" / "questions.jsonl")]
    questions = questions[:40] if args.quick else questions
    script = Path(sys.executable).parent / "restake-qa"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "restake_qa.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "RESTAKE_QA_DATA_DIR": str(Path(tmp) / "data"),
            "RESTAKE_QA_CORPUS_DIR": str(ROOT / "corpus"),
            "RESTAKE_QA_QUERY_CACHE_SIZE": "0",
            "RESTAKE_QA_RATE_LIMIT_PER_MINUTE": "0",
        }
        say("building the index")
        subprocess.run([*argv, "build"], env=env, check=True, capture_output=True, cwd=ROOT)
        port = free_port()
        server = ServerProcess([*argv, "serve", "--port", str(port)], port, env, Path(tmp) / "serve.log")
        say(f"starting restake-qa serve on 127.0.0.1:{port}")
        server.start()
        try:
            conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(3)]
            api, v1, first, done, events = [], [], [], [], []
            for i, q in enumerate(questions * 2):  # the first pass warms up
                api_body = json.dumps({"question": q}, ensure_ascii=False).encode()
                chat = {"model": "restake-qa", "messages": [{"role": "user", "content": q}]}
                v1_body = json.dumps(chat, ensure_ascii=False).encode()
                stream_body = json.dumps({**chat, "stream": True}, ensure_ascii=False).encode()
                t0 = time.perf_counter()
                status, _ = request("POST", "127.0.0.1", port, "/api/answer", api_body, conn=conns[0])
                t1 = time.perf_counter()
                status2, _ = request("POST", "127.0.0.1", port, "/v1/chat/completions", v1_body, conn=conns[1])
                t2 = time.perf_counter()
                f, d, n = _stream(conns[2], stream_body)
                assert status == status2 == 200
                if i >= len(questions):
                    api.append((t1 - t0) * 1000)
                    v1.append((t2 - t1) * 1000)
                    first.append(f)
                    done.append(d)
                    events.append(n)
                if i % 40 == 0:
                    say(f"  {i}/{2 * len(questions)}")
        finally:
            server.stop()
    rows = [
        ("POST /api/answer", stats(api)),
        ("POST /v1/chat/completions", stats(v1)),
        ("… stream: first event", stats(first)),
        ("… stream: [DONE]", stats(done)),
    ]
    base = rows[0][1]["p50"]
    print(
        f"\n{len(api)} questions, load average {os.getloadavg()[0]:.2f}; median events per stream {sorted(events)[len(events) // 2]}\n"
    )
    print("| request | p50 ms | p95 ms | p50 ÷ /api/answer |\n|---|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p50'] / base:.2f} |")


if __name__ == "__main__":
    main()

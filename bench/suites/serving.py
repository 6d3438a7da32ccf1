"""Over HTTP: `restake-qa serve` against the baseline server, and the serving levers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from _util import (
    BENCH,
    ROOT,
    ServerProcess,
    better,
    drive,
    free_port,
    question_bodies,
    request,
    rss_mb,
    say,
    stats,
)
from context import Context


def _serve_argv() -> list[str]:
    script = Path(sys.executable).parent / "restake-qa"
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "restake_qa.cli", "serve"]


def _http_measure(port: int, pid: int, questions: list[str], quick: bool) -> dict[str, Any]:
    bodies = question_bodies(questions)
    start_rss = rss_mb(pid)
    for body in bodies[:20]:
        request("POST", "127.0.0.1", port, "/api/answer", body)
    sequential = []
    errors = 0
    for body in bodies:
        started = time.perf_counter()
        status, _ = request("POST", "127.0.0.1", port, "/api/answer", body)
        sequential.append((time.perf_counter() - started) * 1000)
        errors += status != 200
    levels = []
    for concurrency in (1, 4, 16):
        say(f"    concurrency {concurrency}")
        result = drive(port, bodies, concurrency, max_requests=200 if quick else 2000, max_seconds=5 if quick else 30)
        levels.append(result.to_dict())
    return {
        "latency_c1_ms": stats(sequential),
        "latency_c1_errors": errors,
        "throughput": levels,
        "rss_mb": {"start": start_rss, "end": rss_mb(pid)},
    }


def _serve_env(ctx: Context, **extra: str) -> dict[str, str]:
    """The environment of a `restake-qa serve` over the benchmark's index (no query cache, no rate limit)."""
    return {
        **os.environ,
        "RESTAKE_QA_DATA_DIR": str(ctx.tmp / "data"),
        "RESTAKE_QA_CORPUS_DIR": str(ROOT / "corpus"),
        "RESTAKE_QA_QUERY_CACHE_SIZE": "0",
        "RESTAKE_QA_RATE_LIMIT_PER_MINUTE": "0",
        **extra,
    }


def bench_http(ctx: Context) -> dict[str, Any]:
    """End to end over HTTP: `restake-qa serve` (waitress) vs the baseline on Flask's dev server."""
    ctx.engine  # noqa: B018 - the index serve will use is built
    env = _serve_env(ctx)
    port = free_port()
    server = ServerProcess([*_serve_argv(), "--port", str(port)], port, env, ctx.out / "logs" / "serve.log")
    say(f"  starting restake-qa serve on 127.0.0.1:{port}")
    server.start()
    try:
        ours = _http_measure(port, server.pid, ctx.questions, ctx.quick)
    finally:
        server.stop()
    port = free_port()
    base_env = {**os.environ, "PYTHONPATH": str(BENCH)}
    server = ServerProcess(
        [sys.executable, str(BENCH / "baseline.py"), "--port", str(port)],
        port,
        base_env,
        ctx.out / "logs" / "baseline.log",
    )
    say(f"  starting the baseline (Flask development server) on 127.0.0.1:{port}")
    server.start()
    try:
        theirs = _http_measure(port, server.pid, ctx.questions, ctx.quick)
    finally:
        server.stop()
    lat = {
        "product": ours["latency_c1_ms"],
        "baseline": theirs["latency_c1_ms"],
        "x_vs_baseline": better(ours["latency_c1_ms"].get("p50"), theirs["latency_c1_ms"].get("p50")),
    }
    levels = []
    for a, b in zip(ours["throughput"], theirs["throughput"]):
        levels.append(
            {
                "concurrency": a["concurrency"],
                "product": a,
                "baseline": b,
                "x_vs_baseline": better(a["answers_per_s"], b["answers_per_s"], True),
            }
        )
    return {
        "latency_c1": lat,
        "throughput": levels,
        "errors_c1": {"product": ours["latency_c1_errors"], "baseline": theirs["latency_c1_errors"]},
        "rss_mb": {"product": ours["rss_mb"], "baseline": theirs["rss_mb"]},
    }


def bench_serving(ctx: Context) -> dict[str, Any]:
    """Serving levers over HTTP: waitress threads, model threads and the backend, each a
    fresh `restake-qa serve`, at concurrency 1 and 16 (bounded)."""
    ctx.engine  # noqa: B018 - the index is built
    configs = [
        ("product defaults", {}),
        ("waitress threads 4", {"RESTAKE_QA_THREADS": "4"}),
        ("waitress threads 16", {"RESTAKE_QA_THREADS": "16"}),
        ("model threads 1", {"RESTAKE_QA_MODEL_THREADS": "1"}),
        ("torch backend", {"RESTAKE_QA_MODEL_BACKEND": "torch"}),
    ]
    if ctx.quick:
        configs = configs[:1] + configs[-1:]
    bodies = question_bodies(ctx.questions)
    rows = []
    for name, extra in configs:
        env = _serve_env(ctx, **extra)
        port = free_port()
        server = ServerProcess([*_serve_argv(), "--port", str(port)], port, env, ctx.out / "logs" / "serving.log")
        say(f"  {name}")
        server.start()
        try:
            one = drive(port, bodies, 1, max_requests=60 if ctx.quick else 200, max_seconds=5 if ctx.quick else 15)
            many = drive(port, bodies, 16, max_requests=200 if ctx.quick else 1000, max_seconds=5 if ctx.quick else 15)
            rows.append(
                {"config": name, "env": extra, "c1": one.to_dict(), "c16": many.to_dict(), "rss_mb": rss_mb(server.pid)}
            )
        finally:
            server.stop()
    for r in rows:
        r["x_c16_vs_defaults"] = better(r["c16"]["answers_per_s"], rows[0]["c16"]["answers_per_s"], True)
    return {"rows": rows}

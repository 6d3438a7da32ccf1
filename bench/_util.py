"""Small helpers of the benchmark: statistics, timers, subprocess servers and an HTTP load driver."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def say(message: str) -> None:
    """Progress on stderr, flushed, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stats(values_ms: Iterable[float]) -> dict[str, float]:
    """n, p50, p95, p99, mean, min and max of millisecond samples."""
    v = np.asarray(list(values_ms), dtype=np.float64)
    if not len(v):
        return {"n": 0}
    return {
        "n": int(len(v)),
        "p50": round(float(np.percentile(v, 50)), 3),
        "p95": round(float(np.percentile(v, 95)), 3),
        "p99": round(float(np.percentile(v, 99)), 3),
        "mean": round(float(v.mean()), 3),
        "min": round(float(v.min()), 3),
        "max": round(float(v.max()), 3),
    }


def better(product: float | None, baseline: float | None, higher_is_better: bool = False) -> float | None:
    """How many times better the product is than the baseline (> 1 = better)."""
    if product is None or baseline is None or product <= 0 or baseline <= 0:
        return None
    return round(product / baseline if higher_is_better else baseline / product, 2)


def time_calls(fn: Callable[[Any], Any], inputs: list[Any], warmup: int = 10) -> list[float]:
    """Milliseconds per call of ``fn`` over ``inputs``, after ``warmup`` untimed calls."""
    for x in inputs[:warmup]:
        fn(x)
    out = []
    for x in inputs:
        started = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - started) * 1000)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int | None = None) -> float:
    import psutil

    return round(psutil.Process(pid or os.getpid()).memory_info().rss / 2**20, 1)


# ------------------------------------------------------------------------------ servers


class ServerProcess:
    """A server started as a subprocess, ready when ``health_path`` answers 200."""

    def __init__(
        self, argv: list[str], port: int, env: dict[str, str], log: Path, health_path: str = "/api/health"
    ) -> None:
        self.argv, self.port, self.env, self.log, self.health_path = argv, port, env, log, health_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.log, "wb")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}; see {self.log}:\n{self.log.read_text()[-2000:]}"
                )
            try:
                status, _ = request("GET", "127.0.0.1", self.port, self.health_path, None, timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout:.0f} s; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def request(
    method: str,
    host: str,
    port: int,
    path: str,
    body: bytes | None,
    timeout: float = 30,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    """One HTTP request; reuses ``conn`` when given (keep-alive)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.getheader("Connection", "").lower() == "close" or response.version == 10:
            conn.close()
        return response.status, data
    finally:
        if own:
            conn.close()


@dataclass
class LoadResult:
    concurrency: int
    requests: int = 0
    ok: int = 0
    errors: int = 0
    status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "answers_per_s": round(self.ok / self.seconds, 1) if self.seconds else 0.0,
            "latency_ms": stats(self.latencies_ms),
        }


def drive(
    port: int, bodies: list[bytes], concurrency: int, max_requests: int, max_seconds: float, path: str = "/api/answer"
) -> LoadResult:
    """POST ``bodies`` (cycled) with ``concurrency`` keep-alive clients until ``max_requests``
    or ``max_seconds``; a request counts as an error unless it gets a 200."""
    result = LoadResult(concurrency)
    lock = threading.Lock()
    counter = iter(range(max_requests))
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            started = time.perf_counter()
            try:
                status, _ = request("POST", "127.0.0.1", port, path, bodies[n % len(bodies)], conn=conn)
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            took = (time.perf_counter() - started) * 1000
            with lock:
                result.requests += 1
                result.status[str(status)] = result.status.get(str(status), 0) + 1
                if status == 200:
                    result.ok += 1
                    result.latencies_ms.append(took)
                else:
                    result.errors += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - started
    return result


def question_bodies(questions: list[str]) -> list[bytes]:
    return [json.dumps({"question": q}, ensure_ascii=False).encode() for q in questions]

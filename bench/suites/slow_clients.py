"""Slow and idle clients: 300 sockets from one address (127.0.0.2; half idle, half sending a
request head one byte every 2 s) while another address (127.0.0.1) polls /api/health, against
waitress with the old limits, `restake-qa serve`'s waitress with the new ones, and nginx
(deploy/nginx-restake-qa.conf) in front of it. Figures: health checks answered and their
latency. The real app and index (the bench's engine); everything on 127.0.0.1."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from _util import ROOT, free_port, request, say, stats
from context import Context

FLOOD = "127.0.0.2"
SOCKETS = 300
PROBES = 10
PROBE_TIMEOUT = 5.0


def _nginx(prefix: Path, upstream: int) -> tuple[subprocess.Popen, int]:
    """nginx with the shipped site config (ports replaced) in a private prefix."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    site = (ROOT / "deploy" / "nginx-restake-qa.conf").read_text("utf-8")
    site = site.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    (prefix / "site.conf").write_text(site, "utf-8")
    temps = "\n".join(f"{k}_temp_path {prefix / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"daemon off;\n{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        f"events {{ worker_connections 4096; }}\nhttp {{ access_log off;\n{temps}\ninclude {prefix / 'site.conf'}; }}\n",
        "utf-8",
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port


def _flood(port: int) -> tuple[list[socket.socket], threading.Event]:
    socks: list[socket.socket] = []
    for i in range(SOCKETS):
        s = socket.socket()
        s.settimeout(2)
        s.bind((FLOOD, 0))
        try:
            s.connect(("127.0.0.1", port))
            if i % 2:
                s.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        except OSError:
            pass
        socks.append(s)
    stop = threading.Event()

    def dribble() -> None:
        while not stop.wait(2):
            for s in socks[1::2]:
                try:
                    s.send(b"X")
                except OSError:
                    pass

    threading.Thread(target=dribble, daemon=True).start()
    return socks, stop


def _probe(port: int) -> dict[str, Any]:
    latencies, failures = [], 0
    for _ in range(PROBES):
        started = time.perf_counter()
        try:
            status, _ = request("GET", "127.0.0.1", port, "/api/health", None, timeout=PROBE_TIMEOUT)
            ok = status == 200
        except OSError:
            ok = False
        if ok:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            failures += 1
        time.sleep(0.5)
    return {"answered": len(latencies), "failed": failures, "health_ms": stats(latencies)}


def bench_slow_clients(ctx: Context) -> dict[str, Any]:
    from restake_qa import create_app
    from restake_qa.server import create

    setups = [
        (
            "waitress alone, old limits (200 connections, no per-client cap)",
            {"connections_per_client": 0, "connection_limit": 200, "channel_timeout": 30},
            False,
        ),
        ("waitress alone, new defaults (`restake-qa serve`)", {}, False),
        ("nginx (deploy/) in front of `restake-qa serve`", {"trusted_proxies": "127.0.0.1"}, True),
    ]
    rows = []
    for name, overrides, proxied in setups:
        say(f"  {name}")
        settings = ctx.engine.settings.replace(port=free_port(), rate_limit_per_minute=0, **overrides)
        server = create(create_app(settings, engine=ctx.engine), settings)
        threading.Thread(target=server.run, daemon=True).start()
        nginx, port = _nginx(ctx.tmp / f"nginx-{len(rows)}", settings.port) if proxied else (None, settings.port)
        socks, stop = _flood(port)
        try:
            time.sleep(1)
            row = {"setup": name, "sockets": SOCKETS, **_probe(port)}
        finally:
            stop.set()
            for s in socks:
                s.close()
            if nginx is not None:
                nginx.terminate()
                nginx.wait(timeout=15)
            server.close()
        say(f"    health answered {row['answered']}/{PROBES}, p50 {row['health_ms'].get('p50')} ms")
        rows.append(row)
    return {
        "rows": rows,
        "note": f"{SOCKETS} sockets from {FLOOD} (half idle, half a never-ending request head); "
        f"{PROBES} health checks from 127.0.0.1, each given {PROBE_TIMEOUT:.0f} s",
    }

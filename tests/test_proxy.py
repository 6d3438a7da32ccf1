"""deploy/nginx-restake-qa.conf in front of `restake-qa serve`, both started here on 127.0.0.1.

Hundreds of slow and idle sockets from one address (127.0.0.2) do not keep another address
(127.0.0.1) from the health check and an answer; nginx cuts them off by its header timeout;
per-address request limits answer 429 in the API's shape; the app takes the client from
X-Forwarded-For only because the proxy is trusted, and a forged header never gets through;
streamed responses (``X-Accel-Buffering: no``) are passed on as they come. Bounded socket and
request counts, bounded waits; no timing is asserted. Needs Debian's nginx (`make browser`
installs it); the app runs the real model over an index built with the tiny embedder (an
answer's content is not the point here).
"""

from __future__ import annotations

import getpass
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.models import DEFAULT_MODEL_ID

from helpers import CORPUS, ROOT, free_port, make_settings

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONFIG = ROOT / "deploy" / "nginx-restake-qa.conf"
OTHER = "127.0.0.2"  # the flooding client's address (any 127.x works on Linux loopback)
TOKEN = "proxy-test-token"
pytestmark = pytest.mark.slow


class Nginx:
    """nginx running the shipped site config, its ports replaced, in a private prefix."""

    def __init__(self, prefix: Path, upstream_port: int, site: str | None = None) -> None:
        if not Path(NGINX).exists():
            pytest.skip("nginx is absent: install Debian's nginx (`make browser`) to run the proxy tests")
        self.prefix = prefix
        self.port = free_port()
        prefix.mkdir(parents=True, exist_ok=True)
        text = site or CONFIG.read_text("utf-8")
        assert "listen 127.0.0.1:8080;" in text and "server 127.0.0.1:8000;" in text
        text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.port};")
        text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
        (prefix / "site.conf").write_text(text, "utf-8")
        temps = "\n".join(
            f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            # workers run as this user (not nobody), so that they can use the private temp folders
            + (f"user {getpass.getuser()};\n" if os.geteuid() == 0 else "")
            + f"error_log {prefix / 'error.log'} info;\n"
            "events { worker_connections 4096; }\n"
            f"http {{\n    access_log {prefix / 'access.log'};\n{temps}\n    include {prefix / 'site.conf'};\n}}\n",
            "utf-8",
        )
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Serve:
    """`restake-qa serve` as a subprocess (the real model) over an index in ``data``."""

    def __init__(self, data: Path, log: Path, **env: str) -> None:
        self.port = free_port()
        self.log = log
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith("RESTAKE_QA_") or k == "RESTAKE_QA_MODEL_CACHE"
        }
        environ.update(
            RESTAKE_QA_CORPUS_DIR=str(CORPUS),
            RESTAKE_QA_DATA_DIR=str(data),
            RESTAKE_QA_ADMIN_TOKEN=TOKEN,
            RESTAKE_QA_THREADS="4",
            **env,
        )
        self.handle = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "restake_qa.cli", "serve", "--port", str(self.port), "--no-build"],
            env=environ,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited:\n{log.read_text()[-3000:]}")
            try:
                if request("GET", self.port, "/api/health", timeout=5)[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"serve did not answer in time:\n{log.read_text()[-3000:]}")

    def lines(self) -> list[dict]:
        out = []
        for line in self.log.read_text("utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.handle.close()


def request(
    method: str,
    port: int,
    path: str,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
    timeout: float = 15,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})} if data is not None else dict(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy")
    data = tmp / "data"
    settings = make_settings(tmp, data_dir=str(data))
    build_index(CORPUS, data, HashEmbedder(dimension=384, model_id=DEFAULT_MODEL_ID), settings)
    app = Serve(data, tmp / "serve.log", RESTAKE_QA_TRUSTED_PROXIES="127.0.0.1", RESTAKE_QA_RATE_LIMIT_PER_MINUTE="0")
    proxy = None
    try:
        proxy = Nginx(tmp / "nginx", app.port)
        yield app, proxy
    finally:
        if proxy is not None:
            proxy.stop()
        app.stop()


def _reachable(port: int) -> None:
    """Health and an answer for 127.0.0.1, each within the request's bounded timeout."""
    status, _, body = request("GET", port, "/api/health", timeout=10)
    assert status == 200 and json.loads(body)["status"] == "ok", body
    status, _, body = request("POST", port, "/api/answer", {"question": "再質押有什麼風險？"}, timeout=30)
    assert status == 200 and "answer" in json.loads(body), body


def test_hundreds_of_slow_and_idle_sockets_from_one_address_do_not_starve_others(stack):
    app, proxy = stack
    hogs: list[socket.socket] = []
    stop = threading.Event()

    def dribble(socks: list[socket.socket]) -> None:  # one byte of a never-ending header every 2 s
        while not stop.wait(2):
            for s in socks:
                try:
                    s.send(b"X")
                except OSError:
                    pass

    try:
        for i in range(300):
            s = socket.socket()
            s.settimeout(10)
            s.bind((OTHER, 0))
            s.connect(("127.0.0.1", proxy.port))
            if i % 2:  # slow: a request head that never ends
                s.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            hogs.append(s)
        slow = hogs[1::2]
        feeder = threading.Thread(target=dribble, args=(slow,), daemon=True)
        feeder.start()
        time.sleep(1)
        for _ in range(3):  # while all 300 are held open
            _reachable(proxy.port)
        # the flood never reached the app: waitress saw no connection from 127.0.0.2
        assert not [x for x in app.lines() if x.get("client") == OTHER]
        # nginx cuts them all off (header timeout 10 s), within a bounded wait
        deadline = time.monotonic() + 90
        open_ = list(hogs)
        while open_ and time.monotonic() < deadline:
            still = []
            for s in open_:
                s.settimeout(0.05)
                try:
                    if s.recv(4096) == b"":
                        continue
                except TimeoutError:
                    still.append(s)
                    continue
                except OSError:
                    continue
                still.append(s)  # got a response (e.g. 408); the close follows
            open_ = still
            time.sleep(0.5)
        assert not open_, f"{len(open_)} of 300 sockets still open"
        _reachable(proxy.port)
    finally:
        stop.set()
        for s in hogs:
            s.close()


def test_the_app_sees_the_real_client_and_never_a_forged_one(stack):
    app, proxy = stack
    status, _, _ = request(
        "GET", proxy.port, "/api/sections", headers={"X-Forwarded-For": "203.0.113.66"}, source=OTHER
    )
    assert status == 200
    direct, _, _ = request("GET", app.port, "/api/limits", headers={"X-Forwarded-For": "203.0.113.77"}, source=OTHER)
    assert direct == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = {x["path"]: x for x in app.lines() if x.get("event") == "access"}
        if "/api/sections" in lines and "/api/limits" in lines:
            break
        time.sleep(0.1)
    via_proxy, straight = lines["/api/sections"], lines["/api/limits"]
    assert via_proxy["client"] == OTHER and via_proxy["proxy"] == "127.0.0.1"
    assert straight["client"] == OTHER and "proxy" not in straight  # 127.0.0.2 is no trusted proxy
    assert "203.0.113" not in app.log.read_text("utf-8")


def test_per_address_request_limit_answers_429_in_the_api_shape(stack):
    app, proxy = stack
    statuses = []
    limited = None
    for _ in range(80):  # bounded; the burst allowance is 40
        status, headers, body = request("GET", proxy.port, "/api/limits", source=OTHER, timeout=10)
        statuses.append(status)
        if status == 429:
            limited = (headers, body)
    assert 200 in statuses and limited is not None, statuses
    headers, body = limited
    assert json.loads(body)["error"]["code"] == "rate_limited" and headers["content-type"] == "application/json"
    assert request("GET", proxy.port, "/api/health")[0] == 200  # another address is not limited


def test_bodies_over_the_proxy_limit_get_the_json_413(stack):
    _, proxy = stack
    status, headers, body = request("POST", proxy.port, "/api/answer", {"question": "x", "pad": "y" * 70_000})
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"


def test_streamed_responses_are_passed_on_and_others_buffered(tmp_path):
    """nginx reads an ordinary response from the app at once (buffering it), so a client that
    reads slowly never holds an app thread; a response marked ``X-Accel-Buffering: no``
    (streaming) is passed on at the client's pace instead. A client that reads nothing shows
    which: the app finishes writing 48 MB in the first case, and cannot in the second."""
    import waitress.server

    done = {name: threading.Event() for name in ("stream", "buffered")}

    def app(environ, start_response):
        name = environ["PATH_INFO"].strip("/")
        headers = [("Content-Type", "application/octet-stream")]
        if name == "stream":
            headers.append(("X-Accel-Buffering", "no"))
        start_response("200 OK", headers)

        def body():
            for _ in range(192):
                yield b"x" * 256 * 1024
            done[name].set()

        return body()

    # the app's server holds at most 1 MB of unsent output before its thread waits
    upstream = waitress.server.create_server(
        app, host="127.0.0.1", port=free_port(), threads=4, outbuf_high_watermark=1 << 20
    )
    threading.Thread(target=upstream.run, daemon=True).start()
    proxy = Nginx(tmp_path / "nginx", upstream.effective_port)
    try:
        finished = {}
        for name in ("buffered", "stream"):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(20)
                s.connect(("127.0.0.1", proxy.port))
                s.sendall(f"GET /{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                s.recv(1024)  # the response has begun; now read nothing
                finished[name] = done[name].wait(8)
                while s.recv(1 << 20):  # drain, so that the app can end
                    pass
        assert finished == {"buffered": True, "stream": False}
    finally:
        proxy.stop()
        upstream.close()


def test_an_app_that_is_down_gets_the_json_503_from_the_proxy(tmp_path):
    proxy = Nginx(tmp_path / "nginx", free_port())  # nothing listens upstream
    try:
        status, headers, body = request("GET", proxy.port, "/api/health")
        assert status == 503 and headers["content-type"] == "application/json" and "retry-after" in headers
        assert json.loads(body)["error"]["code"] == "unavailable"
    finally:
        proxy.stop()

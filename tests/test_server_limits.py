"""`restake-qa serve`'s waitress on its own: the errors waitress answers itself come back in the
API's JSON shape (and are logged), one client address cannot hold more than its share of
connections, and idle connections are closed. Real waitress on 127.0.0.1 (via
``restake_qa.server.create``, as `serve` makes it), bounded socket counts and times; the tiny
embedder (this is HTTP plumbing)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest

from restake_qa import create_app
from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.server import create as create_server
from restake_qa.service import Engine

from helpers import CORPUS, free_port, make_settings

OTHER = "127.0.0.2"  # another client address on the loopback (any 127.x works on Linux)


@pytest.fixture(scope="module")
def engine(tmp_path_factory, tools):
    tmp = tmp_path_factory.mktemp("server")
    settings = make_settings(tmp, rate_limit_per_minute=0)
    build_index(CORPUS, settings.data_path, HashEmbedder(), settings, tools=tools)
    return Engine(settings, embedder=HashEmbedder(), tools=tools)


class Running:
    def __init__(self, engine, **overrides) -> None:
        self.settings = engine.settings.replace(port=free_port(), **overrides)
        self.server = create_server(create_app(self.settings, engine=engine), self.settings)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.port = self.settings.port

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def running(engine):
    servers = []

    def start(**overrides):
        servers.append(Running(engine, **overrides))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def raw(port: int, data: bytes, source: str = "127.0.0.1", timeout: float = 20) -> bytes:
    """Send ``data`` on a fresh connection from ``source``; everything the server answers."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(data)
        out = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            out += part
        return out


def split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


HEALTH = b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (  # a body over waitress's own limit (4 × max_body_bytes), announced
            b"POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n{",
            413,
            "body_too_large",
        ),
        (  # a chunk size that is not hexadecimal
            b"POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz<script>\r\n{}\r\n0\r\n\r\n",
            400,
            "bad_request",
        ),
        (  # a transfer encoding waitress does not implement
            b"POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
            "not_implemented",
        ),
        (  # request head over max_header_bytes
            b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (  # garbage in the request line, echoed by waitress's own text
            b"G<script>ET /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "bad_request",
        ),
    ],
)
def test_errors_raised_inside_waitress_are_json(running, caplog, request_bytes, status, code):
    caplog.set_level(logging.INFO, logger="restake_qa")
    server = running()
    got, headers, body = split(raw(server.port, request_bytes))
    assert got == status, body
    assert headers["content-type"] == "application/json" and headers["x-content-type-options"] == "nosniff"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"] and "script" not in body.decode()
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "restake_qa.access"]
    assert any(x["status"] == status and x.get("source") == "waitress" for x in logged), logged


def test_one_address_cannot_take_every_connection(running):
    server = running(connections_per_client=8, channel_timeout=60)
    hogs = []
    try:
        for _ in range(40):  # idle connections from one address
            s = socket.socket()
            s.settimeout(10)
            s.bind((OTHER, 0))
            s.connect(("127.0.0.1", server.port))
            hogs.append(s)
        # the server closes what is over the cap at once: those reads end (b"" or reset)
        closed = 0
        for s in hogs:
            s.settimeout(0.5)
            try:
                closed += s.recv(1) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
        assert closed == 40 - 8, closed
        # another address is served; the capped one too, once it lets go of its connections
        assert split(raw(server.port, HEALTH))[0] == 200
        try:  # over its cap: closed without an answer
            refused = raw(server.port, HEALTH, source=OTHER, timeout=5)
        except OSError:
            refused = b""
        assert refused == b""
        for s in hogs:
            s.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if split(raw(server.port, HEALTH, source=OTHER, timeout=5))[0] == 200:
                    break
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the capped address was not served again after closing its connections")
    finally:
        for s in hogs:
            s.close()


def test_idle_connections_are_closed_after_channel_timeout(running):
    server = running(channel_timeout=2)
    with socket.socket() as s:
        s.settimeout(30)  # bound: channel_timeout plus the cleanup interval, with room
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /api/health HTTP/1.1\r\n")  # an unfinished request, then silence
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass

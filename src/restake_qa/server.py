"""Running the app with waitress, the production WSGI server behind `restake-qa serve`.

waitress is told the limits a public server needs (see README "Running it in production"):
how many connections it keeps (``connection_limit``) and how many one client address may hold
(``connections_per_client``; a trusted proxy is exempt), how long an idle or stalled
connection lives (``channel_timeout``), the largest request head and body, and how much of a
body it buffers in memory. The errors waitress answers itself, before the app sees a request
(a body over its limit, a bad chunk size, an unsupported Transfer-Encoding, a head too large),
come back in the API's JSON error shape and are logged like any request.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

from .config import Settings
from .errors import RestakeQAError
from .guard import Network, in_networks, log_access, parse_networks

log = logging.getLogger("restake_qa")

#: The JSON error of each status waitress answers itself (its own texts may quote the request).
WAITRESS_ERRORS = {
    400: ("bad_request", "the request is not valid HTTP (bad request line, header, or chunk size)"),
    413: ("body_too_large", "the request body is over the server's limit"),
    431: ("headers_too_large", "the request line and headers are over the server's limit"),
    500: ("internal_error", "unexpected server error"),
    501: ("not_implemented", "this Transfer-Encoding is not supported; send the body with Content-Length"),
}


class ServeError(RestakeQAError):
    """The server cannot listen; the message names the address and what to try."""


def check_port(host: str, port: int) -> None:
    """Fail at once (before seconds of model loading) if ``host:port`` cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}; check --host") from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress binds
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; is another server running? pick another --port"
            ) from None


def tune_for_serving() -> None:
    """Process-wide settings measured to help a server (see bench/README.md)."""
    import faiss

    # One vector per search: OpenMP's fork/join costs more than it saves, and with several
    # request threads it oversubscribes the cores (flat search over 100k vectors: 40 ms with
    # 2 threads under load, 6 ms with 1).
    faiss.omp_set_num_threads(1)


class JsonErrorTask(ErrorTask):
    """An error waitress answers itself, in the API's JSON shape, logged like any request."""

    def execute(self) -> None:
        error = self.request.error
        code, message = WAITRESS_ERRORS.get(error.code, ("http_error", error.reason))
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(
            [
                ("Content-Type", "application/json"),
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
            ]
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        addr = getattr(self.channel, "addr", None)
        log_access(
            str(getattr(self.request, "command", "") or "-"),
            str(getattr(self.request, "path", "") or "-"),
            int(error.code),
            0.0,
            str(addr[0]) if addr else "?",
            source="waitress",
        )


class _Channel(HTTPChannel):
    error_task_class = JsonErrorTask


def _channel_factory(cap: int, exempt: tuple[Network, ...]) -> Callable[..., Any]:
    """What waitress calls for each accepted connection: a channel, unless the client address
    already holds ``cap`` connections (then the socket is closed at once, before it costs a
    buffer or a thread; other clients are unaffected)."""
    refused = {"count": 0, "logged": 0.0}

    def make(server: Any, sock: socket.socket, addr: Any, adj: Any, map: dict[int, Any] | None = None) -> Any:
        host = addr[0] if isinstance(addr, tuple) else str(addr)
        if cap and not in_networks(host, exempt):
            held = sum(1 for ch in (map or {}).values() if isinstance(ch, HTTPChannel) and ch.addr[0] == host)
            if held >= cap:
                sock.close()
                refused["count"] += 1
                now = time.monotonic()
                if now - refused["logged"] >= 10:  # a flood must not flood the log too
                    refused["logged"] = now
                    log.warning(
                        "refused connections from %s: it holds %d (connections_per_client); %d refused so far",
                        host,
                        held,
                        refused["count"],
                    )
                return None
        return _Channel(server, sock, addr, adj, map=map)

    return make


def server_options(settings: Settings) -> dict[str, Any]:
    """waitress's adjustments for ``settings`` (chosen for a server facing the public)."""
    return {
        "threads": settings.threads,
        "ident": "restake-qa",
        # Flask answers bodies over max_body_bytes with the JSON 413; waitress stops reading
        # far larger ones (and answers its own JSON 413) so they never fill memory.
        "max_request_body_size": settings.max_body_bytes * 4,
        "max_request_header_size": settings.max_header_bytes,
        # bodies up to the limit stay in memory; a temp file is never needed
        "inbuf_overflow": max(settings.max_body_bytes * 4, 65536),
        "connection_limit": settings.connection_limit,
        "channel_timeout": settings.channel_timeout,
        "cleanup_interval": max(1, min(5, settings.channel_timeout // 2 or 1)),
        # poll() instead of select(): select() fails past 1,024 open file descriptors
        "asyncore_use_poll": True,
        "backlog": 1024,
        "recv_bytes": 8192,
        # waitress strips X-Forwarded-* unless told of a proxy; the app decides whom to believe
        # (guard.py: only trusted_proxies), so keep the header when a proxy is configured
        "clear_untrusted_proxy_headers": not settings.trusted_proxies.strip(),
    }


def create(app: Flask, settings: Settings) -> Any:
    """A waitress server for ``app`` on the configured address (not yet running)."""
    import waitress.server

    server = waitress.server.create_server(app, host=settings.host, port=settings.port, **server_options(settings))
    factory = _channel_factory(settings.connections_per_client, parse_networks(settings.trusted_proxies))
    listeners = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = factory
    return server


def serve(app: Flask, settings: Settings, announce: Callable[[str], None]) -> None:
    """Listen on the configured address until Ctrl+C or SIGTERM (requests in flight finish)."""
    address = f"{settings.host}:{settings.port}"
    try:
        server = create(app, settings)
    except OSError as exc:
        raise ServeError(f"cannot listen on {address}: {exc.strerror or exc}; pick another --port") from None
    # SIGTERM (docker stop, systemd) ends the loop like Ctrl+C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    announce(f"serving on http://{address}/ ({settings.threads} threads); Ctrl+C stops")
    sys.stderr.flush()
    server.run()


class _JsonLines(logging.Formatter):
    """Access and audit lines are JSON already; any other log record becomes one too."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name in ("restake_qa.access", "restake_qa.audit"):
            return message
        fields = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "event": "log",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False)


def configure_logging(stream: Any = None) -> None:
    """Send restake-qa's and waitress's log records to stderr as JSON lines (once)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonLines())
    for name in ("restake_qa", "waitress"):
        logger = logging.getLogger(name)
        if not any(getattr(h, "_restake_qa", False) for h in logger.handlers):
            handler._restake_qa = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False

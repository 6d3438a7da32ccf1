"""Running the app with waitress, the production WSGI server behind `restake-qa serve`."""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable

from flask import Flask

from .config import Settings
from .errors import RestakeQAError


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


def serve(app: Flask, settings: Settings, announce: Callable[[str], None]) -> None:
    """Listen on the configured address until Ctrl+C or SIGTERM (requests in flight finish)."""
    import waitress.server

    address = f"{settings.host}:{settings.port}"
    try:
        server = waitress.server.create_server(
            app,
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            ident="restake-qa",
            max_request_body_size=settings.max_body_bytes * 4,
            connection_limit=200,
            channel_timeout=30,
        )
    except OSError as exc:
        raise ServeError(f"cannot listen on {address}: {exc.strerror or exc}; pick another --port") from None
    # SIGTERM (docker stop, systemd) ends the loop like Ctrl+C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    announce(f"serving on http://{address}/ ({settings.threads} threads); Ctrl+C stops")
    sys.stderr.flush()
    server.run()

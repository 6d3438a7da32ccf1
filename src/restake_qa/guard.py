"""What every HTTP response goes through: the real client address, the Host check, security
headers, and the access and audit logs.

* **Client address.** Behind a reverse proxy every connection comes from the proxy. When the
  peer is one of ``trusted_proxies``, the client is read from ``X-Forwarded-For`` (from the
  right, skipping further trusted proxies) and becomes ``REMOTE_ADDR``, so the rate limiter and
  the logs see the real client; from anyone else the header is ignored.
* **Hosts.** With ``trusted_hosts`` set, a request naming another ``Host`` gets 400; redirects
  never carry a host at all (their ``Location`` is made relative), so a forged Host header is
  never reflected.
* **Headers.** ``X-Content-Type-Options: nosniff`` on every response; HTML gets the page's
  Content-Security-Policy with ``frame-ancestors 'none'``, everything else a CSP that allows
  nothing.
* **Logs.** One JSON line per request on the ``restake_qa.access`` logger (method, path,
  status, milliseconds, client; the question only with ``log_questions``), and one on
  ``restake_qa.audit`` for every admin action and every refused token (401/403).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, jsonify, request

from .config import Settings
from .errors import ConfigError

access_log = logging.getLogger("restake_qa.access")
audit_log = logging.getLogger("restake_qa.audit")

#: Endpoints whose every use is an admin action (audited whatever the outcome).
ADMIN_ENDPOINTS = {"api.reindex", "api.reindex_status", "api.reindex_cancel"}
#: CSP of responses that are not pages (JSON, scripts, images): nothing may load or frame them.
NON_PAGE_CSP = "default-src 'none'; frame-ancestors 'none'"
_STARTED = "restake_qa.started"
_PROXY = "restake_qa.proxy"
_MAX_LOGGED_PATH = 200

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` → networks; a bad entry is a :class:`ConfigError`."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(
                f"trusted_proxies (RESTAKE_QA_TRUSTED_PROXIES): {part!r} is not an address or network"
            ) from None
    return tuple(out)


def parse_hosts(text: str) -> frozenset[str]:
    return frozenset(h.strip().lower().rstrip(".") for h in text.split(",") if h.strip())


def in_networks(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in networks)


def forwarded_client(peer: str, forwarded_for: str, networks: tuple[Network, ...]) -> str:
    """The client a request came from: ``peer``, unless ``peer`` is a trusted proxy; then the
    right-most ``X-Forwarded-For`` address that is not itself a trusted proxy (each proxy
    appends the address it saw, so only the right end is vouched for)."""
    if not networks or not in_networks(peer, networks):
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop.strip("[]"))
        except ValueError:
            break  # garbage: trust what we had
        client = hop
        if not in_networks(hop, networks):
            break
    return client


class RealClient:
    """WSGI middleware: notes when the request started and puts the real client into
    ``REMOTE_ADDR`` (see :func:`forwarded_client`)."""

    def __init__(self, app: Callable[..., Any], networks: tuple[Network, ...]) -> None:
        self.app = app
        self.networks = networks

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ[_STARTED] = time.perf_counter()
        peer = environ.get("REMOTE_ADDR") or ""
        client = forwarded_client(peer, environ.get("HTTP_X_FORWARDED_FOR", ""), self.networks)
        if client != peer:
            environ[_PROXY] = peer
            environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)


def note_question(question: str) -> None:
    """Remember the question of this request for the access log (logged only with ``log_questions``)."""
    g.restake_qa_question = question


def note_job(job_id: str) -> None:
    """Remember the reindex job this request started or touched, for the audit log."""
    g.restake_qa_job = job_id


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _line(event: str, **fields: Any) -> str:
    return json.dumps({"ts": _now(), "event": event, **fields}, ensure_ascii=False)


def log_access(method: str, path: str, status: int, ms: float, client: str, **extra: Any) -> None:
    """One access log line (also used for the errors waitress answers itself)."""
    access_log.info(
        _line(
            "access",
            method=method[:16],
            path=path[:_MAX_LOGGED_PATH],
            status=status,
            ms=round(ms, 1),
            client=client,
            **extra,
        )
    )


def install(app: Flask, settings: Settings, page_csp: str) -> None:
    """Put the middleware, the Host check, the headers and the logs on ``app``."""
    networks = parse_networks(settings.trusted_proxies)
    hosts = parse_hosts(settings.trusted_hosts)
    app.wsgi_app = RealClient(app.wsgi_app, networks)  # type: ignore[method-assign]

    @app.before_request
    def _check_host() -> Response | tuple[Response, int] | None:
        if not hosts:
            return None
        name = urlsplit("//" + (request.headers.get("Host") or "")).hostname or ""
        if name.rstrip(".") in hosts:
            return None
        return jsonify(
            {"error": {"code": "unknown_host", "message": "this server does not answer for that Host header"}}
        ), 400

    @app.after_request
    def _finish(response: Response) -> Response:
        _headers(response, page_csp)
        _log(response, settings)
        return response


def _headers(response: Response, page_csp: str) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", page_csp)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    else:
        response.headers.setdefault("Content-Security-Policy", NON_PAGE_CSP)
    location = response.headers.get("Location")
    if location:
        # never reflect the request's Host (or scheme) into a redirect: keep only the path
        parts = urlsplit(location)
        if parts.scheme or parts.netloc:
            response.headers["Location"] = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _log(response: Response, settings: Settings) -> None:
    started = request.environ.get(_STARTED)
    ms = (time.perf_counter() - started) * 1000 if started else 0.0
    client = request.remote_addr or "?"
    extra: dict[str, Any] = {}
    if _PROXY in request.environ:
        extra["proxy"] = request.environ[_PROXY]
    if settings.log_questions and getattr(g, "restake_qa_question", None) is not None:
        extra["question"] = g.restake_qa_question
    if settings.access_log:
        log_access(request.method, request.path, response.status_code, ms, client, **extra)
    endpoint = request.endpoint or ""
    admin_view = endpoint == "api.health" and "Authorization" in request.headers
    if endpoint in ADMIN_ENDPOINTS or admin_view or response.status_code in (401, 403):
        if response.status_code in (401, 403):
            outcome = "refused"
        else:  # the admin health view is shown whatever the service's state
            outcome = "ok" if response.status_code < 400 or admin_view else "failed"
        fields: dict[str, Any] = {
            "action": f"{request.method} {request.url_rule.rule if request.url_rule else request.path[:_MAX_LOGGED_PATH]}",
            "outcome": outcome,
            "status": response.status_code,
            "client": client,
        }
        job = getattr(g, "restake_qa_job", None) or (request.view_args or {}).get("job_id")
        if job:
            fields["job_id"] = str(job)[:64]
        audit_log.log(logging.WARNING if outcome == "refused" else logging.INFO, _line("audit", **fields))

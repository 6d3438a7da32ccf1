"""What every response goes through (guard.py): headers on every route, no user input echoed in
errors, no Host reflected into redirects, trusted hosts, the client address behind a trusted
proxy only, and the access and audit logs. Flask's test client (the tiny embedder: this is
HTTP plumbing) and, for what only a real server shows, waitress on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading

import pytest

from restake_qa import create_app
from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.guard import forwarded_client, parse_networks
from restake_qa.server import create as create_server
from restake_qa.service import Engine

from helpers import CORPUS, free_port, make_settings

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory, tools):
    tmp = tmp_path_factory.mktemp("guard")
    settings = make_settings(tmp, refusal_rule="bias=1", rate_limit_per_minute=0, admin_token=TOKEN)
    build_index(CORPUS, settings.data_path, HashEmbedder(), settings, tools=tools)
    return Engine(settings, embedder=HashEmbedder(), tools=tools)


@pytest.fixture
def client(engine):
    return create_app(engine.settings, engine=engine).test_client()


def _sample_requests(app) -> list[tuple[str, str]]:
    """One request per route and method of the app's url_map (arguments filled in)."""
    out = []
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<path:filename>", "index.html").replace("<job_id>", "nosuchjob")
        path = re.sub(r"<[^>]+>", "x", path)
        for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
            out.append((method, path))
        out.append(("OPTIONS", path))
    return out


def test_every_route_has_nosniff_and_a_csp_and_every_page_frame_ancestors(engine, client):
    app = create_app(engine.settings, engine=engine)
    requests = _sample_requests(app)
    assert len(requests) >= 12 and ("GET", "/static/index.html") in requests and ("GET", "/") in requests
    requests += [("GET", "/no/such/page"), ("PUT", "/api/answer"), ("GET", "/static/favicon.svg")]
    pages = 0
    for method, path in requests:
        kwargs = {"headers": AUTH}
        if method == "POST":
            kwargs.update(json={"question": "再質押是什麼？"})
        r = client.open(path, method=method, **kwargs)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (method, path, r.status_code)
        csp = r.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, (method, path)
        if r.mimetype == "text/html":
            pages += 1
            assert "script-src 'self'" in csp and "default-src 'self'" in csp, (method, path)
            assert r.headers.get("X-Frame-Options") == "DENY"
        else:
            assert "default-src 'none'" in csp, (method, path)
    assert pages >= 2  # / and /static/index.html


@pytest.mark.parametrize(
    "path", ["/api/nope<script>alert(1)</script>", "/%3Cimg%20src=x%20onerror=alert(1)%3E", "/api/reindex/<b>x</b>"]
)
def test_errors_never_echo_the_request(client, path):
    for method in ("GET", "POST", "DELETE", "PATCH"):
        r = client.open(path, method=method, headers=AUTH)
        body = r.get_data(as_text=True)
        assert r.status_code in (404, 405) and r.is_json, (method, path, r.status_code)
        assert "<" not in body and "script" not in body and "img" not in body, body
        assert set(r.get_json()) == {"error"}


def test_redirects_do_not_reflect_the_host_header(engine):
    app = create_app(engine.settings, engine=engine)
    port = free_port()
    server = create_server(app, engine.settings.replace(port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api//health", headers={"Host": "evil.example"})  # merged slashes redirect
        r = conn.getresponse()
        r.read()
        assert r.status in (301, 308)
        assert r.getheader("Location") == "/api/health"
        assert "evil" not in json.dumps(r.getheaders())
        conn.close()
    finally:
        server.close()


def test_trusted_hosts_refuse_other_host_headers(engine):
    c = create_app(engine.settings.replace(trusted_hosts="qa.example.org, localhost"), engine=engine).test_client()
    assert c.get("/api/health", headers={"Host": "qa.example.org"}).status_code == 200
    assert c.get("/api/health", headers={"Host": "localhost:8000"}).status_code == 200
    r = c.get("/api/health", headers={"Host": "evil.example"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "unknown_host"
    assert "evil" not in r.get_data(as_text=True)


def test_forwarded_for_is_believed_from_trusted_proxies_only():
    nets = parse_networks("127.0.0.1, 10.0.0.0/8")
    assert forwarded_client("127.0.0.1", "203.0.113.9", nets) == "203.0.113.9"
    # the client can prepend anything; only the proxies' right end counts
    assert forwarded_client("127.0.0.1", "1.1.1.1, 203.0.113.9", nets) == "203.0.113.9"
    assert forwarded_client("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.1.2.3", nets) == "203.0.113.9"
    assert forwarded_client("127.0.0.1", "not-an-ip", nets) == "127.0.0.1"
    assert forwarded_client("198.51.100.7", "203.0.113.9", nets) == "198.51.100.7"  # not a proxy
    assert forwarded_client("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"  # none trusted (default)


def test_the_rate_limit_counts_the_real_client_behind_a_trusted_proxy(engine):
    def app_with(proxies: str):
        settings = engine.settings.replace(rate_limit_per_minute=2, trusted_proxies=proxies)
        return create_app(settings, engine=engine).test_client()

    def ask(c, client_ip, peer="127.0.0.1"):
        return c.post(
            "/api/answer",
            json={"question": "再質押是什麼？"},
            headers={"X-Forwarded-For": client_ip},
            environ_base={"REMOTE_ADDR": peer},
        ).status_code

    behind = app_with("127.0.0.1")
    assert [ask(behind, "203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert ask(behind, "203.0.113.2") == 200  # another client behind the same proxy
    direct = app_with("")  # not trusted: the header is ignored, the peer is the client
    assert [ask(direct, f"203.0.113.{i}") for i in range(3)] == [200, 200, 429]


def _lines(caplog, logger: str) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == logger]


def test_access_log_has_one_structured_line_per_request_without_the_question(client, caplog):
    caplog.set_level(logging.INFO, logger="restake_qa")
    client.post("/api/answer", json={"question": "再質押有什麼風險？"}, environ_base={"REMOTE_ADDR": "198.51.100.4"})
    client.get("/api/nope")
    lines = _lines(caplog, "restake_qa.access")
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("POST", "/api/answer", 200),
        ("GET", "/api/nope", 404),
    ]
    assert lines[0]["client"] == "198.51.100.4" and lines[0]["ms"] > 0 and lines[0]["event"] == "access"
    assert "風險" not in caplog.text and "question" not in lines[0]


def test_log_questions_puts_the_question_into_the_access_line(engine, caplog):
    caplog.set_level(logging.INFO, logger="restake_qa")
    c = create_app(engine.settings.replace(log_questions=True), engine=engine).test_client()
    c.post("/api/answer", json={"question": "再質押有什麼風險？"})
    assert _lines(caplog, "restake_qa.access")[0]["question"] == "再質押有什麼風險？"


def test_every_admin_action_and_every_refused_token_is_audited(engine, caplog):
    caplog.set_level(logging.INFO, logger="restake_qa")
    c = create_app(engine.settings, engine=engine).test_client()
    c.post("/api/reindex", headers={"Authorization": "Bearer wrong"}, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    c.get("/api/reindex/abc")  # no token at all
    c.get("/api/health", headers={"Authorization": "Bearer wrong"})
    started = c.post("/api/reindex", headers=AUTH)
    assert started.status_code == 202
    job_id = started.get_json()["job_id"]
    c.get(f"/api/reindex/{job_id}", headers=AUTH)
    c.get("/api/health", headers=AUTH)
    c.get("/api/health")  # public: not an admin action
    off = create_app(engine.settings.replace(admin_token=""), engine=engine).test_client()
    off.post("/api/reindex", headers=AUTH)  # 403: the endpoint is off
    audit = _lines(caplog, "restake_qa.audit")
    assert [(a["action"], a["outcome"], a["status"]) for a in audit] == [
        ("POST /api/reindex", "refused", 401),
        ("GET /api/reindex/<job_id>", "refused", 401),
        ("GET /api/health", "refused", 401),
        ("POST /api/reindex", "ok", 202),
        ("GET /api/reindex/<job_id>", "ok", 200),
        ("GET /api/health", "ok", 200),
        ("POST /api/reindex", "refused", 403),
    ]
    assert audit[0]["client"] == "198.51.100.9"
    assert audit[3]["job_id"] == job_id == audit[4]["job_id"]
    refused = [r for r in caplog.records if r.name == "restake_qa.audit" and "refused" in r.getMessage()]
    assert all(r.levelno == logging.WARNING for r in refused)
    assert TOKEN not in caplog.text and "wrong" not in caplog.text  # tokens are never logged
    wait_for_jobs(c, job_id)


def wait_for_jobs(c, job_id: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if c.get(f"/api/reindex/{job_id}", headers=AUTH).get_json()["status"] != "running":
            return
        time.sleep(0.05)


def test_a_bad_trusted_proxy_is_a_clear_error(engine):
    from restake_qa.errors import ConfigError

    with pytest.raises(ConfigError, match="RESTAKE_QA_TRUSTED_PROXIES.*'nonsense'"):
        create_app(engine.settings.replace(trusted_proxies="10.0.0.0/8, nonsense"), engine=engine)

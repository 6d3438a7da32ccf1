"""The JSON API through Flask's test client: shapes, validation, limits, admin endpoints.

These use the tiny deterministic embedder (the API's plumbing does not depend on the model);
test_answer.py and test_server.py use the real model and a real HTTP server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restake_qa import create_app
from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.service import Engine

from helpers import CORPUS, make_settings


@pytest.fixture(scope="module")
def engine(tmp_path_factory, tools):
    tmp = tmp_path_factory.mktemp("web")
    s = make_settings(tmp, refusal_rule="bias=1")  # plumbing tests: never refuse
    embedder = HashEmbedder()
    build_index(CORPUS, s.data_path, embedder, s, tools=tools)
    return Engine(s, embedder=embedder, tools=tools)


@pytest.fixture
def app(engine):
    return create_app(engine.settings.replace(rate_limit_per_minute=0), engine=engine)


@pytest.fixture
def client(app):
    return app.test_client()


def ask(client, body, **kw):
    return client.post("/api/answer", data=json.dumps(body, ensure_ascii=False), content_type="application/json", **kw)


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_answer_shape(client):
    r = ask(client, {"question": "再質押有哪些風險？"})
    assert r.status_code == 200
    body = r.get_json()
    assert {"answer", "citations", "passages", "refused", "language", "took_ms", "index_version"} <= set(body)
    assert body["language"] == "zh-tw" and body["refused"] is False
    assert body["citations"] and all(
        c["url"].startswith("https://ethereum.org/zh-tw/restaking/") for c in body["citations"]
    )
    for c in body["citations"]:
        assert f"[{c['n']}]" in body["answer"]
        assert set(c["scores"]) >= {"dense", "lexical", "fused"}
    assert "再質押" in r.get_data(as_text=True)  # not \u-escaped


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "missing_question"),
        ({"question": ""}, 400, "missing_question"),
        ({"question": "   "}, 400, "missing_question"),
        ({"question": 42}, 400, "invalid_question"),
        ({"question": ["a"]}, 400, "invalid_question"),
        ({"question": "a" * 501}, 400, "question_too_long"),
        ({"question": "再質押\x00是什麼"}, 400, "invalid_characters"),
        ({"question": "再質押", "history": "x"}, 400, "invalid_history"),
        ({"question": "再質押", "history": ["x"]}, 400, "invalid_history"),
        ({"question": "再質押", "history": [{"question": 1, "answer": ""}]}, 400, "invalid_question"),
        ({"question": "再質押", "history": [{"question": "q", "answer": "a"}] * 11}, 400, "history_too_long"),
        ({"question": "再質押", "top_k": 0}, 400, "invalid_top_k"),
        ({"question": "再質押", "top_k": "3"}, 400, "invalid_top_k"),
        ({"question": "再質押", "top_k": True}, 400, "invalid_top_k"),
        ({"question": "再質押", "language": "fr"}, 400, "invalid_language"),
        ({"question": "再質押", "language": 1}, 400, "invalid_language"),
        ([1, 2], 400, "invalid_body"),
    ],
)
def test_bad_bodies_get_clear_400s(client, body, status, code):
    assert_error(ask(client, body), status, code)


def test_a_question_alike_in_both_scripts_is_answered_in_the_askers(client, tools):
    # 「收益大概能有多少？」 is written the same in Traditional and Simplified characters: the
    # asker's earlier questions decide its script, then the interface's, then Traditional
    question = "收益大概能有多少？"
    simplified_turn = [{"question": "再质押有哪些风险？", "answer": "…"}]
    traditional_turn = [{"question": "再質押有哪些風險？", "answer": "…"}]
    cases = [
        ({}, "zh-tw"),
        ({"language": "zh-cn"}, "zh-cn"),
        ({"language": "en"}, "zh-tw"),  # an English interface says nothing about Chinese script
        ({"history": simplified_turn}, "zh-cn"),
        ({"history": simplified_turn, "language": "zh-tw"}, "zh-cn"),  # what they typed comes first
        ({"history": traditional_turn, "language": "zh-cn"}, "zh-tw"),
    ]
    for extra, expected in cases:
        body = ask(client, {"question": question, **extra}).get_json()
        assert body["language"] == expected, extra
        text = body["answer"]
        assert (text == tools.to_simplified(text)) == (expected == "zh-cn"), extra
    # a question whose script shows keeps it whatever the interface says
    assert ask(client, {"question": "再質押有哪些風險？", "language": "zh-cn"}).get_json()["language"] == "zh-tw"
    assert ask(client, {"question": "what are the risks?", "language": "zh-cn"}).get_json()["language"] == "en"


def test_not_json(client):
    assert_error(client.post("/api/answer", data="{nope", content_type="application/json"), 400, "invalid_json")
    assert_error(client.post("/api/answer", data=b"\xff\xfe", content_type="application/json"), 400, "invalid_json")
    assert_error(
        client.post("/api/answer", data="[" * 5000 + "]" * 5000, content_type="application/json"), 400, "invalid_json"
    )
    assert_error(
        client.post("/api/answer", data="question=x", content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )
    assert_error(client.post("/api/answer", data='{"question": "x"}'), 415, "unsupported_media_type")


def test_oversized_body(client):
    r = client.post(
        "/api/answer", data=json.dumps({"question": "x", "pad": "y" * 40000}), content_type="application/json"
    )
    assert_error(r, 413, "body_too_large")


def test_unknown_routes_and_methods_are_json(client):
    assert_error(client.get("/api/nope"), 404, "not_found")
    assert_error(client.get("/nope"), 404, "not_found")
    r = client.get("/api/answer")
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]
    assert_error(client.delete("/api/health"), 405, "method_not_allowed")


def test_html_in_a_question_is_plain_text(client):
    r = ask(client, {"question": "<img src=x onerror=alert(1)> 再質押是什麼？"})
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert "<img" not in json.dumps(r.get_json()["citations"], ensure_ascii=False)


def test_health_sections_glossary_openapi(client, engine):
    h = client.get("/api/health").get_json()
    assert h["status"] == "ok" and h["index_version"] == engine.snapshot().index.version
    assert h["chunks"] == len(engine.snapshot().index.chunks) and h["problems"] == []
    toc = client.get("/api/sections").get_json()["sections"]
    assert [s["anchor"] for s in toc][:2] == ["", "what-is-restaking"]
    assert toc[1]["url"] == "https://ethereum.org/zh-tw/restaking/#what-is-restaking"
    terms = {t["term"]: t for t in client.get("/api/glossary").get_json()["terms"]}
    assert terms["罰沒"]["english"] == "slashing"
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/api/answer" in spec["paths"]


def test_every_api_route_is_documented(app):
    spec = json.loads((Path(__file__).resolve().parents[1] / "src/restake_qa/openapi.json").read_text("utf-8"))
    routes = {
        r.rule.replace("<", "{").replace(">", "}")
        for r in app.url_map.iter_rules()
        if r.rule.startswith(("/api", "/v1"))
    }
    assert routes == set(spec["paths"])


def test_rate_limit_returns_429_with_retry_after(engine):
    app = create_app(engine.settings.replace(rate_limit_per_minute=3), engine=engine)
    c = app.test_client()
    codes = [ask(c, {"question": "再質押"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = ask(c, {"question": "再質押"})
    assert_error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert c.get("/api/health").status_code == 200  # health is never limited
    assert c.get("/api/glossary").status_code == 200  # nor the chat page's tooltips


def test_reindex_needs_a_configured_token(engine):
    off = create_app(engine.settings.replace(admin_token=""), engine=engine).test_client()
    assert_error(off.post("/api/reindex"), 403, "reindex_disabled")
    on = create_app(engine.settings.replace(admin_token="s3cret"), engine=engine).test_client()
    assert_error(on.post("/api/reindex"), 401, "unauthorized")
    assert_error(on.post("/api/reindex", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_error(on.get("/api/reindex/abc", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_error(on.get("/api/reindex/abc", headers={"Authorization": "Bearer s3cret"}), 404, "unknown_job")


def test_index_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and b"<html" in r.data.lower()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"question": json_values}, optional={"history": json_values, "top_k": json_values}).map(
        lambda v: json.dumps(v).encode()
    ),
    st.binary(max_size=200),
)


@given(
    body=bodies, content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8", ""])
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_input_never_gets_a_5xx(client, body, content_type):
    r = client.post("/api/answer", data=body, content_type=content_type)
    assert r.status_code < 500, r.get_data(as_text=True)
    assert r.is_json


def test_a_failed_engine_start_is_reported_not_retried_on_every_request(monkeypatch, tmp_path):
    import restake_qa.web

    calls = []

    class NoModel:
        def __init__(self, *args, **kwargs):
            calls.append(1)
            raise RuntimeError("No embedding model found; set RESTAKE_QA_MODEL")

    monkeypatch.setattr(restake_qa.web, "Engine", NoModel)
    client = create_app(make_settings(tmp_path)).test_client()
    for _ in range(3):
        r = client.get("/api/health")
        assert r.status_code == 503 and r.get_json()["problems"] == ["engine_unavailable"]  # details: admin only
    assert len(calls) == 1  # one model load attempt, not one per request

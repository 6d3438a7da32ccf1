"""The OpenAI-compatible API, driven by the official ``openai`` client against a real server.

Most tests use conftest's ``live_server`` (waitress on 127.0.0.1, the real model and index);
the key, rate-limit and streaming tests start their own app the same way. The formatting and
the fuzzing of request bodies are plumbing and use the tiny embedder or no engine at all.
"""

from __future__ import annotations

import json
import socket
import threading

import openai
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import OpenAI

from restake_qa import create_app
from restake_qa.answer import ENGLISH_NOTE
from restake_qa.answer_markdown import escape, format_answer_markdown, history_answer
from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.openai_api import stream_pieces
from restake_qa.service import Engine

from helpers import CORPUS, LiveServer, make_settings

TIMEOUT = 60
RISKS = "what-are-the-risks-of-restaking"


def make_client(server: LiveServer, key: str = "unused") -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def client(live_server) -> OpenAI:
    return make_client(live_server)


def ask(client: OpenAI, *messages: str | dict, **options):
    turns = [m if isinstance(m, dict) else {"role": "user", "content": m} for m in messages]
    return client.chat.completions.create(model="restake-qa", messages=turns, **options)


def content_of(completion) -> str:
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    return choice.message.content


@pytest.fixture(scope="module")
def own_server(real_settings, real_engine):
    """Start an app of the real engine with changed settings on its own port; stopped after."""
    servers = []

    def start(**changes) -> LiveServer:
        server = LiveServer(create_app(real_settings.replace(**changes), engine=real_engine))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# ------------------------------------------------------------------------------ answers


def test_models_lists_one_model(client):
    assert [m.id for m in client.models.list()] == ["restake-qa"]
    assert client.models.retrieve("restake-qa").owned_by == "restake-qa"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    assert caught.value.body["code"] == "model_not_found"


def test_an_answer_with_its_sources(client, live_server):
    completion = ask(client, "再質押有什麼風險？")
    content = content_of(completion)
    assert completion.object == "chat.completion" and completion.model == "restake-qa"
    body = completion.restake_qa  # the structured answer, as POST /api/answer returns it
    assert body["refused"] is False and body["language"] == "zh-tw"
    assert RISKS in {c["anchor"] for c in body["citations"]}
    answer_text, sources = content.split("\n\n**來源**\n\n")
    for c in body["citations"]:
        assert f"[{c['n']}]" in answer_text  # the markers stay in the text
        assert f"]({c['url']})" in sources and f"[{c['title']}]" in sources  # Markdown links
    assert sources.count("\n- ") + 1 == len({c["url"] for c in body["citations"]})  # one line per section
    api = requests.post(
        f"{live_server.url}/api/answer", json={"question": "再質押有什麼風險？"}, timeout=TIMEOUT
    ).json()
    assert body["answer"] == api["answer"] and body["citations"] == api["citations"]
    assert body["index_version"] == api["index_version"] == completion.system_fingerprint
    assert content == format_answer_markdown(body)


def test_a_streamed_answer_equals_the_whole_one(client):
    whole = content_of(ask(client, "再質押有什麼風險？"))
    chunks = list(ask(client, "再質押有什麼風險？", stream=True))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(pieces) > 3 and all(pieces)  # the answer comes in several pieces
    assert "".join(pieces) == whole
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and not last.choices[0].delta.content
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert last.restake_qa["citations"] and format_answer_markdown(last.restake_qa) == whole


def test_a_follow_up_through_the_message_history(client, live_server):
    first = content_of(ask(client, "什麼是再質押？"))
    alone = ask(client, "那風險呢？").restake_qa
    followed = ask(
        client,
        {"role": "system", "content": "You are a helpful assistant."},
        "什麼是再質押？",
        {"role": "assistant", "content": first},
        "那風險呢？",
    ).restake_qa
    assert alone["resolved_question"] is None
    assert "再質押" in followed["resolved_question"]
    assert followed["citations"][0]["anchor"] == RISKS
    # the same history through POST /api/answer (the chat page sends the answer text) gives the same answer
    api_first = requests.post(f"{live_server.url}/api/answer", json={"question": "什麼是再質押？"}, timeout=TIMEOUT)
    api = requests.post(
        f"{live_server.url}/api/answer",
        json={
            "question": "那風險呢？",
            "history": [{"question": "什麼是再質押？", "answer": api_first.json()["answer"]}],
        },
        timeout=TIMEOUT,
    ).json()
    assert api["resolved_question"] == followed["resolved_question"] and api["answer"] == followed["answer"]


def test_a_refusal_is_an_ordinary_assistant_message(client):
    completion = ask(client, "今天天氣如何？")
    content = content_of(completion)
    assert completion.choices[0].message.refusal is None
    body = completion.restake_qa
    assert body["refused"] is True and body["suggestions"]
    assert content.startswith(escape(body["message"])) and body["refusal"]["reason"]
    for s in body["suggestions"]:
        assert f"]({s['url']})" in content
    assert "[1]" not in content


@pytest.mark.parametrize(
    ("question", "language", "heading"),
    [
        ("What are the risks of restaking?", "en", "Sources"),
        ("再质押有什么风险？", "zh-cn", "来源"),
        ("再質押有什麼風險？", "zh-tw", "來源"),
    ],
)
def test_the_reply_speaks_the_askers_language(client, question, language, heading):
    completion = ask(client, question)
    content = content_of(completion)
    assert completion.restake_qa["language"] == language
    assert f"\n\n**{heading}**\n\n" in content
    assert sum(f"**{h}**" in content for h in ("Sources", "来源", "來源")) == 1
    assert ENGLISH_NOTE not in content  # every version of the page has this section: no fallback note
    if language == "en":  # the English page quoted, cited with its English address
        assert "risk" in content.lower() and "風險" not in content
        assert "](https://ethereum.org/en/restaking/#what-are-the-risks-of-restaking)" in content


def test_system_messages_parts_and_ignored_parameters_change_nothing(client):
    plain = content_of(ask(client, "營運者做什麼？"))
    assert plain and "[1]" in plain
    with_system = ask(client, {"role": "system", "content": "Answer in French, in one word."}, "營運者做什麼？")
    parts = ask(client, {"role": "user", "content": [{"type": "text", "text": "營運者做什麼？"}]})
    tuned = ask(
        client,
        "營運者做什麼？",
        temperature=1.7,
        top_p=0.1,
        max_tokens=1,
        stop=["。"],
        presence_penalty=1.0,
        frequency_penalty=1.0,
        seed=3,
        user="someone",
        n=1,
        response_format={"type": "text"},
    )
    assert content_of(with_system) == content_of(parts) == content_of(tuned) == plain


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("messages", "options", "param"),
    [
        ([{"role": "system", "content": "hi"}], {}, "messages"),  # no user message
        ([], {}, "messages"),
        ([{"role": "user", "content": "再質押"}, {"role": "assistant", "content": "x"}], {}, "messages[1]"),
        ([{"role": "user", "content": "  "}], {}, "messages[0].content"),
        ([{"role": "user", "content": "再" * 501}], {}, "messages[0].content"),
        ([{"role": "user", "content": "再質押\x00"}], {}, "messages[0].content"),
        (
            [{"role": "user", "content": "再質押"}],
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            "tools",
        ),
        ([{"role": "user", "content": "再質押"}], {"tool_choice": "required"}, "tool_choice"),
        ([{"role": "tool", "content": "42", "tool_call_id": "a"}, {"role": "user", "content": "x"}], {}, "messages[0]"),
        ([{"role": "user", "content": "再質押"}], {"n": 2}, "n"),
        ([{"role": "user", "content": "再質押"}], {"logprobs": True}, "logprobs"),
        ([{"role": "user", "content": "再質押"}], {"response_format": {"type": "json_object"}}, "response_format"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}],
            {},
            "messages[0].content[0].type",
        ),
        # wrong types
        ([{"role": "user", "content": 42}], {}, "messages[0].content"),
        ([{"role": "user", "content": [{"type": "text", "text": 1}]}], {}, "messages[0].content[0].text"),
        ([{"role": "robot", "content": "x"}], {}, "messages[0].role"),
        (["再質押"], {}, "messages[0]"),
        ([{"role": "user", "content": "再質押"}], {"stream": "yes"}, "stream"),
        ([{"role": "user", "content": "再質押"}], {"n": "2"}, "n"),
    ],
)
def test_bad_requests_get_the_protocols_error(client, messages, options, param):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="restake-qa", messages=messages, **options)
    error = caught.value
    assert error.status_code == 400
    assert error.response.json() == {"error": error.body}
    assert set(error.body) == {"message", "type", "param", "code"}
    assert error.body["type"] == "invalid_request_error" and error.body["param"] == param
    assert error.body["message"] and error.body["code"]


def test_wrong_model_and_body_errors(client, live_server):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "再質押"}])
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=42, messages=[{"role": "user", "content": "再質押"}])
    assert caught.value.body["param"] == "model"

    url = f"{live_server.url}/v1/chat/completions"
    for raw, content_type, status, code in [
        ("{nope", "application/json", 400, "invalid_json"),
        ("[1, 2]", "application/json", 400, "invalid_body"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        ('{"model": "restake-qa"}', "text/plain", 415, "unsupported_media_type"),
        (json.dumps({"model": "restake-qa", "pad": "x" * 40000}), "application/json", 413, "request_too_large"),
    ]:
        r = requests.post(url, data=raw, headers={"Content-Type": content_type}, timeout=TIMEOUT)
        assert r.status_code == status, r.text
        assert r.json() == {
            "error": {
                "message": r.json()["error"]["message"],
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }


def test_the_api_key_guards_the_v1_routes(own_server):
    server = own_server(openai_api_key="s3cret-key")
    for key in ("wrong", "s3cret-ke", "unused"):
        with pytest.raises(openai.AuthenticationError) as caught:
            ask(make_client(server, key), "再質押是什麼？")
        assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"
        assert caught.value.response.headers["WWW-Authenticate"] == "Bearer"
        with pytest.raises(openai.AuthenticationError):
            make_client(server, key).models.list()
    good = make_client(server, "s3cret-key")
    assert content_of(ask(good, "再質押是什麼？")).startswith("再質押")
    assert [m.id for m in good.models.list()] == ["restake-qa"]
    # the key is for /v1 only: the chat page's API and the admin token are separate
    assert requests.post(f"{server.url}/api/answer", json={"question": "再質押"}, timeout=TIMEOUT).status_code == 200
    r = requests.post(f"{server.url}/api/reindex", headers={"Authorization": "Bearer s3cret-key"}, timeout=TIMEOUT)
    assert r.status_code == 403


def test_the_rate_limit_is_the_apis(own_server):
    server = own_server(rate_limit_per_minute=3)
    client = make_client(server)
    assert requests.post(f"{server.url}/api/answer", json={"question": "再質押"}, timeout=TIMEOUT).status_code == 200
    ask(client, "再質押是什麼？")
    ask(client, "再質押是什麼？")  # the /api request above counted: this is the third
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client, "再質押是什麼？")
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 60
    assert [m.id for m in client.models.list()] == ["restake-qa"]  # listing models is not limited


# ------------------------------------------------------------------------------ streaming over a socket


class GatedEngine:
    """The real engine, but an answer waits until the test has received the first chunk."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.gate = threading.Event()
        self.client_had_first_chunk: bool | None = None

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def answer(self, *args, **kwargs):
        self.client_had_first_chunk = self.gate.wait(timeout=TIMEOUT)
        return self._engine.answer(*args, **kwargs)


def _chunked(reader):
    """The chunks of an HTTP/1.1 chunked body, read one at a time."""
    while True:
        size = int(reader.readline().split(b";")[0], 16)
        if size == 0:
            reader.readline()
            return
        data = reader.read(size)
        reader.readline()
        yield data


def test_the_stream_is_not_buffered(real_settings, real_engine):
    """The first event reaches the client while the answer is still to be made: waitress
    sends each chunk as it is produced (a buffered stream would arrive all at the end)."""
    engine = GatedEngine(real_engine)
    server = LiveServer(create_app(real_settings, engine=engine))
    server.start()
    try:
        body = json.dumps(
            {"model": "restake-qa", "stream": True, "messages": [{"role": "user", "content": "再質押有什麼風險？"}]}
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, value = line.decode().split(":", 1)
                headers[name.strip().lower()] = value.strip()
            assert headers["content-type"].startswith("text/event-stream")
            assert headers["cache-control"] == "no-cache" and headers["x-accel-buffering"] == "no"
            assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
            chunks = _chunked(reader)
            received = b""
            while b"\n\n" not in received:
                received += next(chunks)
            assert engine.client_had_first_chunk is None  # the answer is not made yet
            engine.gate.set()
            received += b"".join(chunks)
    finally:
        server.stop()
    assert engine.client_had_first_chunk is True
    events = [e.removeprefix("data: ") for e in received.decode().split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks_json = [json.loads(e) for e in events[:-1]]
    assert chunks_json[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks_json[-1]["choices"][0]["finish_reason"] == "stop" and "restake_qa" in chunks_json[-1]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks_json)
    assert content == format_answer_markdown(chunks_json[-1]["restake_qa"])


# ------------------------------------------------------------------------------ formatting (no server)


def test_history_reads_back_what_the_formatter_wrote(real_engine):
    """An assistant message the API wrote gives history the answer text the chat page would
    send (markers kept, note and sources dropped; nothing for a refusal)."""
    for question in (
        "什麼是再質押？",
        "What do operators do?",
        "再质押有什么风险？",
        "今天天氣如何？",
        "What is the weather?",
    ):
        body = real_engine.answer(question)[0].to_dict()
        expected = "" if body["refused"] else body["answer"]
        if body["layout"] == "table":  # a table's rows come back as their cells, with every marker
            back = history_answer(format_answer_markdown(body))
            assert all(f"[{c['n']}]" in back for c in body["citations"])
            continue
        assert history_answer(format_answer_markdown(body)) == expected
    assert history_answer("Restaking reuses staked ETH.") == "Restaking reuses staked ETH."  # another model's reply


def test_page_text_is_escaped_and_markers_are_not():
    body = {
        "refused": False,
        "language": "zh-tw",
        "note": None,
        "sentences": [{"text": "質押 *ETH* 與 [AVS] <b>x</b>。", "citations": [1, 2]}],
        "citations": [
            {"n": 1, "title": "風險 [1]", "url": "https://example.org/a b#x(y)"},
            {"n": 2, "title": "", "url": "https://example.org/"},
        ],
    }
    content = format_answer_markdown(body)
    assert content.startswith(r"質押 \*ETH\* 與 \[AVS\] \<b\>x\</b\>。[1][2]")
    assert r"- [1] [風險 \[1\]](https://example.org/a%20b#x%28y%29)" in content
    assert "- [2] [頁首](https://example.org/)" in content
    assert history_answer(content) == "質押 *ETH* 與 [AVS] <b>x</b>。[1][2]"


@given(st.text(alphabet=st.sampled_from(list("再質押。[]1 2\n*ab")), max_size=80))
def test_stream_pieces_join_to_the_content(text):
    assert "".join(stream_pieces(text)) == text


# ------------------------------------------------------------------------------ plumbing (tiny embedder)


@pytest.fixture(scope="module")
def hash_app(tmp_path_factory, tools):
    s = make_settings(tmp_path_factory.mktemp("openai"), rate_limit_per_minute=0)
    build_index(CORPUS, s.data_path, HashEmbedder(), s, tools=tools)
    return create_app(s, engine=Engine(s, embedder=HashEmbedder(), tools=tools))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", 7]), "content": json_values | st.text(max_size=30)}
)
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["restake-qa", "x", None]), "messages": st.lists(message, max_size=4) | json_values},
    optional={
        "stream": json_values,
        "n": json_values,
        "tools": json_values,
        "response_format": json_values,
        "temperature": json_values,
    },
)


@given(body=bodies)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_requests_never_get_a_5xx(hash_app, body):
    r = hash_app.test_client().post("/v1/chat/completions", json=body)
    assert r.status_code in (200, 400, 404), r.get_data(as_text=True)
    if r.status_code != 200:
        assert set(r.get_json()["error"]) == {"message", "type", "param", "code"}


def test_no_index_is_a_503_in_the_protocols_shape(tmp_path):
    app = create_app(make_settings(tmp_path), embedder=HashEmbedder())
    r = app.test_client().post(
        "/v1/chat/completions", json={"model": "restake-qa", "messages": [{"role": "user", "content": "再質押"}]}
    )
    assert r.status_code == 503
    error = r.get_json()["error"]
    assert (
        error["type"] == "server_error"
        and error["code"] == "index_unavailable"
        and "restake-qa build" in error["message"]
    )

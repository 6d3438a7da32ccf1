"""The console's API (/api/admin/…): the token guards every route, uploads are checked and
change nothing when refused, the preview writes nothing, saving keeps the replaced file, and a
rollback restores content and index together.

The plumbing tests use the tiny HashEmbedder through Flask's test client; the killed-rebuild
test runs `restake-qa serve` (real model) as a subprocess and SIGKILLs it mid-rebuild.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from restake_qa import create_app
from restake_qa.build import build_index, build_lock
from restake_qa.corpus import corpus_hash
from restake_qa.embedding import HashEmbedder
from restake_qa.index import builds_dir, current_version, live_manifest, load_index
from restake_qa.service import Engine

from helpers import CORPUS, ROOT, free_port, make_settings

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGE = "restaking.zh-tw.md"
OLD_SENTENCE = "再質押是指質押者使用他們已經質押的 ETH 來保護其他去中心化服務。"
NEW_SENTENCE = "再質押是指質押者運用已經質押的 ETH，來保護更多其他的去中心化服務。"
ORIGINAL = (CORPUS / PAGE).read_text("utf-8")


def changed_page(extra: str = "") -> str:
    """The page with one sentence reworded, an unknown component, and ``extra`` at the end."""
    text = ORIGINAL.replace(OLD_SENTENCE, NEW_SENTENCE)
    text = text.replace(
        "## 質押與再質押 {#staking-vs-restaking}", "<StakingCalculator />\n\n## 質押與再質押 {#staking-vs-restaking}"
    )
    assert text != ORIGINAL
    return text + extra


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def template(tmp_path_factory, tools) -> Path:
    """A corpus copy and a data folder with one build of it (HashEmbedder)."""
    tmp = tmp_path_factory.mktemp("admin-template")
    shutil.copytree(CORPUS, tmp / "corpus")
    settings = make_settings(tmp, corpus_dir=str(tmp / "corpus"))
    build_index(tmp / "corpus", settings.data_path, HashEmbedder(), settings, tools=tools)
    return tmp


class Console:
    """A copy of the template behind the real app, driven through Flask's test client."""

    def __init__(self, tmp: Path, template: Path, tools, **overrides) -> None:
        self.root = tmp
        shutil.copytree(template / "corpus", tmp / "corpus")
        shutil.copytree(template / "data", tmp / "data")
        self.corpus, self.data = tmp / "corpus", tmp / "data"
        options = {"admin_token": TOKEN, "rate_limit_per_minute": 0, "reload_interval": 0.0, "refusal_rule": "bias=1"}
        settings = make_settings(tmp, corpus_dir=str(self.corpus), **{**options, **overrides})
        self.settings = settings
        self.engine = Engine(settings, embedder=HashEmbedder(), tools=tools)
        self.app = create_app(settings, engine=self.engine)
        self.client = self.app.test_client()

    def get(self, path: str, **kw):
        return self.client.get(path, headers=AUTH, **kw)

    def post(self, path: str, **kw):
        return self.client.post(path, headers={**AUTH, **kw.pop("headers", {})}, **kw)

    def upload(self, path: str, name: str, data: bytes, headers=None, **form):
        return self.client.post(
            path,
            headers=AUTH if headers is None else headers,
            data={"file": (io.BytesIO(data), name), **form},
            content_type="multipart/form-data",
        )

    def wait_job(self, job_id: str, limit: float = 60) -> dict:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            job = self.get(f"/api/reindex/{job_id}").get_json()
            if job["status"] != "running":
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish in {limit} s")

    def files(self) -> dict[str, str]:
        """Every file of the corpus and data folders (but the lock files) → its sha256."""
        return {
            str(p.relative_to(self.root)): sha(p.read_bytes())
            for p in sorted(self.root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")
        }


@pytest.fixture
def console(tmp_path, template, tools) -> Console:
    return Console(tmp_path, template, tools)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"], error
    return error


# the token ----------------------------------------------------------------------------------
def admin_requests(app) -> list[tuple[str, str]]:
    """(method, path) of every admin route, path parameters filled in."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/admin", "/api/reindex")):
            path = rule.rule.replace("<name>", PAGE).replace("<job_id>", "abc123")
            out += [(m, path) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


def test_every_admin_endpoint_refuses_without_the_token(tmp_path, template, tools):
    console = Console(tmp_path / "on", template, tools)
    off = create_app(console.settings.replace(admin_token=""), engine=console.engine).test_client()
    routes = admin_requests(console.app)
    assert len(routes) >= 11, routes  # status, builds, rollback, pages ×2, page, preview, questions ×2, reindex ×2
    before = console.files()

    def body(method: str) -> dict:  # a valid upload for POSTs: only the token is wrong
        if method != "POST":
            return {}
        return {"data": {"file": (io.BytesIO(changed_page().encode()), PAGE)}, "content_type": "multipart/form-data"}

    for method, path in routes:
        r = off.open(path, method=method, headers=AUTH, **body(method))
        assert r.status_code == 403, (method, path, r.status_code)
        assert r.get_json()["error"]["code"] in {"admin_disabled", "reindex_disabled"}
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": TOKEN},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            r = console.client.open(path, method=method, headers=headers, **body(method))
            assert_error(r, 401, "unauthorized")
            assert r.headers["WWW-Authenticate"] == "Bearer"
    assert console.files() == before  # nothing was saved, built or rolled back
    assert console.engine.snapshot().index.version == current_version(console.data)
    # and with the token the same routes answer
    assert console.get("/api/admin/status").status_code == 200
    assert off.get("/admin").status_code == 200  # the page itself is public: it holds no data


def test_the_admin_api_is_rate_limited_like_the_rest(template, tools, tmp_path):
    console = Console(tmp_path, template, tools, rate_limit_per_minute=3)
    codes = [
        console.client.get("/api/admin/status", headers={"Authorization": "Bearer guess"}).status_code for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]  # guessing the token is slowed down too


# status, builds, the sections browser -------------------------------------------------------------
def test_status_builds_and_the_sections_of_the_live_index(console):
    status = console.get("/api/admin/status").get_json()
    index = console.engine.snapshot().index
    assert status["index"]["version"] == index.version
    assert status["index"]["model"]["id"] == "test/hash-embedder"
    assert status["index"]["counts"] == {
        "sections": len(index.sections),
        "chunks": len(index.chunks),
        "sentences": len(index.sentences),
    }
    assert status["corpus"]["changed_since_build"] is False and status["corpus"]["writable"] is True
    assert status["reindex"] is None and status["question_log"]["enabled"] is True

    builds = console.get("/api/admin/builds").get_json()
    assert builds["live"] == index.version and builds["rollback_to"] is None
    (only,) = builds["builds"]
    assert only["live"] and only["sources"] and len(only["changes"]["sections_added"]) == len(index.sections)

    pages = console.get("/api/admin/pages").get_json()["pages"]
    sources = list(dict.fromkeys(s.source for s in index.sections))  # the page's three language versions
    assert sources[0] == PAGE and len(sources) == 3
    assert [(p["source"], p["lang"], p["sections"], p["chunks"]) for p in pages] == [
        (
            source,
            next(s.lang for s in index.sections if s.source == source),
            sum(s.source == source for s in index.sections),
            sum(c.section_key.startswith(source + "#") for c in index.chunks),
        )
        for source in sources
    ]
    page_sections = [s for s in index.sections if s.source == PAGE]
    detail = console.get(f"/api/admin/pages/{PAGE}").get_json()
    assert [s["anchor"] for s in detail["sections"]] == [s.anchor for s in page_sections]
    for section, original in zip(detail["sections"], page_sections):
        # the chunks are exact slices of the section's text, and its sentences are in it
        assert "".join(original.text[a:b] for a, b in (c["span"] for c in section["chunks"])) == original.text
        assert section["sentences"] and all(x in original.text for x in section["sentences"])
    assert OLD_SENTENCE in detail["sections"][1]["sentences"]
    assert_error(console.get("/api/admin/pages/nope.zh-tw.md"), 404, "unknown_page")


# uploads that are refused -------------------------------------------------------------------
GOOD = changed_page().encode()


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("../restaking.zh-tw.md", GOOD, 400, "bad_file_name"),
        ("../../etc/restaking.zh-tw.md", GOOD, 400, "bad_file_name"),
        ("sub/restaking.zh-tw.md", GOOD, 400, "bad_file_name"),
        ("..\\restaking.zh-tw.md", GOOD, 400, "bad_file_name"),
        ("/tmp/restaking.zh-tw.md", GOOD, 400, "bad_file_name"),
        (".restaking.zh-tw.md", GOOD, 400, "bad_file_name"),
        ("..", GOOD, 400, "bad_file_name"),
        ("Restaking.ZH-TW.md", GOOD, 400, "bad_file_name"),
        ("restaking.md", GOOD, 400, "bad_file_name"),
        ("restaking.zh-tw.txt", GOOD, 415, "not_markdown"),
        ("restaking.zh-tw.mdx", GOOD, 415, "not_markdown"),
        ("corpus.toml", b'base_url = "https://evil.example"\n', 415, "not_markdown"),
        ("glossary.toml", b"", 415, "not_markdown"),
        ("restaking.zh-tw.md", "再質押".encode("big5") * 10, 415, "not_utf8"),
        ("restaking.zh-tw.md", b"", 422, "bad_corpus"),
        ("restaking.zh-tw.md", b"---\ntitle: x\n---\n\nno language\n", 422, "bad_corpus"),
        ("restaking.zh-tw.md", b"---\nlang: [zh-tw\n---\n", 422, "bad_corpus"),
        ("restaking.zh-tw.md", GOOD + b"x" * 20_000, 413, "page_too_large"),
        ("restaking.zh-tw.md", GOOD + b"x" * 200_000, 413, "page_too_large"),
    ],
)
def test_bad_uploads_get_4xx_and_change_nothing(tmp_path, template, tools, name, data, status, code):
    console = Console(tmp_path, template, tools, upload_max_bytes=len(GOOD) + 100)
    before = console.files()
    for path in ("/api/admin/pages/preview", "/api/admin/pages"):
        error = assert_error(console.upload(path, name, data), status, code)
        assert "\n" not in error["message"]
    assert console.files() == before
    assert not (console.data / "page-versions").exists()
    assert console.get("/api/admin/status").get_json()["reindex"] is None
    assert current_version(console.data) == console.engine.snapshot().index.version


def test_uploads_in_another_shape_are_refused(console):
    before = console.files()
    for path in ("/api/admin/pages/preview", "/api/admin/pages"):
        assert_error(console.post(path, json={"name": PAGE, "text": ORIGINAL}), 415, "unsupported_media_type")
        assert_error(console.post(path, data={"other": "x"}, content_type="multipart/form-data"), 400, "missing_file")
        r = console.post(path, data=GOOD, content_type="text/markdown")
        assert_error(r, 415, "unsupported_media_type")
    # a name whose language differs from the page's front matter: previewed, never saved
    english = "restaking.en.md"
    preview = console.upload("/api/admin/pages/preview", english, GOOD).get_json()
    assert preview["can_save"] is False and "lang: zh-tw" in preview["errors"][0]
    assert_error(console.upload("/api/admin/pages", english, GOOD), 422, "page_not_saved")
    assert console.files() == before


# the preview ----------------------------------------------------------------------------------
def test_the_preview_shows_changes_and_warnings_and_writes_nothing(console):
    before = console.files()
    text = changed_page().replace("## 進階 {#advanced}", "## 進階 {#what-is-restaking}")  # a repeated anchor
    text += "\n### 沒有錨點的標題\n\n## 空段落 {#nothing-here}\n"
    start, end = text.index("## 再質押有哪些例子？"), text.index("## 我能從再質押中賺多少錢？")
    text = text[:start] + text[end:]  # a section removed
    r = console.upload("/api/admin/pages/preview", PAGE, text.encode())
    assert r.status_code == 200, r.get_data(as_text=True)
    p = r.get_json()
    assert p["replaces"]["sha256"] == sha(ORIGINAL.encode()) and p["sha256"] == sha(text.encode())
    assert p["can_save"] and not p["errors"] and not p["identical"]
    status = {s["anchor"]: s["status"] for s in p["sections"]}
    assert status["what-is-restaking"] == "changed" and status["staking-vs-restaking"] == "unchanged"
    assert status["nothing-here"] == "added"
    (change,) = [c for c in p["changes"] if c["anchor"] == "what-is-restaking"]
    assert change["removed"] == [OLD_SENTENCE] and change["added"] == [NEW_SENTENCE]
    kinds = {w["kind"]: w for w in p["warnings"]}
    assert "StakingCalculator" in kinds["unknown_component"]["message"]
    assert text.splitlines()[kinds["unknown_component"]["line"] - 1] == "<StakingCalculator />"
    assert "what-is-restaking" in kinds["duplicate_anchor"]["message"]
    assert "沒有錨點的標題" in kinds["heading_without_anchor"]["message"]
    assert "nothing-here" in kinds["empty_section"]["message"]
    gone = ["what-are-some-examples-of-restaking", "advanced"]  # deleted, and re-anchored to a repeated id
    assert [x["anchor"] for x in p["removed"]] == gone
    removed = [w["message"] for w in p["warnings"] if w["kind"] == "anchor_removed"]
    assert len(removed) == 2 and all(f"{{#{a}}}" in m for a, m in zip(gone, removed))
    assert all(s["chunks"] >= 1 for s in p["sections"] if s["anchor"] != "nothing-here")
    assert console.files() == before  # nothing written, nothing published

    same = console.upload("/api/admin/pages/preview", PAGE, ORIGINAL.encode()).get_json()
    assert same["identical"] and {s["status"] for s in same["sections"]} == {"unchanged"} and not same["warnings"]
    new = console.upload("/api/admin/pages/preview", "pools.zh-tw.md", b"---\nlang: zh-tw\n---\n\n## A {#a}\n\nText.\n")
    new = new.get_json()
    assert new["replaces"] is None and new["live_sections"] == 0 and {s["status"] for s in new["sections"]} == {"added"}
    assert new["page_url"] == "https://ethereum.org/zh-tw/pools/"


# saving, rebuilding, rolling back -------------------------------------------------------------------
def save(console: Console, name: str, data: bytes) -> dict:
    preview = console.upload("/api/admin/pages/preview", name, data).get_json()
    expected = preview["replaces"]["sha256"] if preview["replaces"] else ""
    r = console.upload("/api/admin/pages", name, data, expected_sha256=expected)
    assert r.status_code == 202, r.get_data(as_text=True)
    saved = r.get_json()
    job = console.wait_job(saved["job_id"])
    assert job["status"] == "done", job
    return {**saved, "job": job}


def sentences_of(console: Console, name: str = PAGE) -> set[str]:
    detail = console.get(f"/api/admin/pages/{name}").get_json()
    return {x for s in detail["sections"] for x in s["sentences"]}


def test_save_rebuild_and_rollback_restore_content_and_index_together(console):
    v0 = current_version(console.data)
    text = changed_page().encode()
    saved = save(console, PAGE, text)
    report = saved["job"]["report"]
    assert report["previous"] == v0 and report["sections_changed"] == [f"{PAGE}#what-is-restaking"]
    assert (console.corpus / PAGE).read_bytes() == text
    kept = Path(saved["kept"])
    assert (kept / PAGE).read_text("utf-8") == ORIGINAL and kept.parent == console.data / "page-versions"
    v1 = current_version(console.data)
    assert v1 == report["version"] and console.engine.snapshot().index.version == v1
    assert NEW_SENTENCE in sentences_of(console) and OLD_SENTENCE not in sentences_of(console)
    builds = console.get("/api/admin/builds").get_json()
    assert builds["rollback_to"] == v0
    assert builds["builds"][0]["changes"]["sections_changed"] == [f"{PAGE}#what-is-restaking"]

    # a second page, so that the rollback after it has a file to take away
    pools = b"---\ntitle: Pools\nlang: zh-tw\n---\n\n## A {#a}\n\n\xe8\xb3\xaa\xe6\x8a\xbc\xe6\xb1\xa0\xe3\x80\x82\n"
    save(console, "pools.zh-tw.md", pools)
    v2 = current_version(console.data)
    r = console.post("/api/admin/rollback")
    assert r.status_code == 200, r.get_data(as_text=True)
    outcome = r.get_json()
    assert outcome["version"] == v1 and outcome["rolled_back_from"] == v2
    assert outcome["content"]["removed"] == ["pools.zh-tw.md"] and outcome["content"]["restored"] == []
    assert not (console.corpus / "pools.zh-tw.md").exists()
    assert (Path(outcome["content"]["kept"]) / "pools.zh-tw.md").read_bytes() == pools  # nothing lost
    listed = [p["source"] for p in console.get("/api/admin/pages").get_json()["pages"]]
    assert PAGE in listed and "pools.zh-tw.md" not in listed

    r = console.post("/api/admin/rollback")
    outcome = r.get_json()
    assert r.status_code == 200 and outcome["version"] == v0
    assert outcome["content"]["restored"] == [PAGE]
    assert (console.corpus / PAGE).read_text("utf-8") == ORIGINAL
    assert (Path(outcome["content"]["kept"]) / PAGE).read_bytes() == text
    assert OLD_SENTENCE in sentences_of(console) and NEW_SENTENCE not in sentences_of(console)
    # content and index agree: the corpus hashes to the live build, and a build has nothing to do
    assert corpus_hash(console.corpus) == live_manifest(console.data)["corpus_sha256"]
    assert console.get("/api/admin/status").get_json()["corpus"]["changed_since_build"] is False
    assert console.engine.build().up_to_date
    assert_error(console.post("/api/admin/rollback"), 409, "nothing_to_roll_back")


def test_a_build_without_sources_rolls_back_the_index_alone(tmp_path, tools, monkeypatch):
    from restake_qa import build

    shutil.copytree(CORPUS, tmp_path / "t" / "corpus")
    settings = make_settings(tmp_path / "t", corpus_dir=str(tmp_path / "t" / "corpus"))
    with monkeypatch.context() as m:  # as a build made before builds kept their sources
        m.setattr(build, "read_sources", lambda *args: None)
        old = build_index(settings.corpus_path, settings.data_path, HashEmbedder(), settings, tools=tools).version
    console = Console(tmp_path / "c", tmp_path / "t", tools)
    save(console, PAGE, changed_page().encode())
    outcome = console.post("/api/admin/rollback").get_json()
    assert (
        outcome["version"] == old and outcome["content"] is None and "no copy of its sources" in outcome["content_note"]
    )
    assert (console.corpus / PAGE).read_bytes() == changed_page().encode()  # left as it was
    assert console.get("/api/admin/status").get_json()["corpus"]["changed_since_build"] is True


def test_save_refuses_a_page_changed_since_its_preview_and_while_a_rebuild_runs(console):
    preview = console.upload("/api/admin/pages/preview", PAGE, GOOD).get_json()
    edited = ORIGINAL + "\n補充。\n"
    (console.corpus / PAGE).write_text(edited, encoding="utf-8")  # someone edits the file meanwhile
    before = console.files()
    r = console.upload("/api/admin/pages", PAGE, GOOD, expected_sha256=preview["replaces"]["sha256"])
    assert_error(r, 409, "page_changed")
    assert_error(console.upload("/api/admin/pages", "new.zh-tw.md", GOOD, expected_sha256="x"), 409, "page_changed")
    assert console.files() == before and (console.corpus / PAGE).read_text("utf-8") == edited

    with build_lock(console.data):  # a CLI build holds the lock: the console's rebuild waits
        job = console.post("/api/reindex").get_json()
        error = assert_error(console.upload("/api/admin/pages", PAGE, GOOD), 409, "reindex_running")
        assert error["job_id"] == job["job_id"]
        assert_error(console.post("/api/admin/rollback"), 409, "reindex_running")
        assert console.files() == before
    assert console.wait_job(job["job_id"])["status"] == "done"


# a rebuild started from the console, killed with its server ------------------------------------------
def _notes_page(n: int) -> str:
    lines = ["---", "title: 再質押筆記", "lang: zh-tw", "---", ""]
    for i in range(n):
        if i % 10 == 0:
            lines += ["", f"## 筆記第 {i // 10 + 1} 部分 {{#notes-{i // 10 + 1}}}", ""]
        lines.append(
            f"第 {i} 則筆記：營運者編號 {i * 7} 替 AVS 編號 {i * 13} 運行驗證軟體，每週回報 {i % 9 + 1} 次狀態。"
        )
    return "\n".join(lines) + "\n"


class ServeProcess:
    def __init__(self, data: Path, corpus: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTAKE_QA_") or k == "RESTAKE_QA_MODEL_CACHE"}
        env.update(
            RESTAKE_QA_DATA_DIR=str(data),
            RESTAKE_QA_CORPUS_DIR=str(corpus),
            RESTAKE_QA_ADMIN_TOKEN=TOKEN,
            RESTAKE_QA_RATE_LIMIT_PER_MINUTE="0",
        )
        argv = [sys.executable, "-m", "restake_qa.cli", "serve", "--no-build", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read()[-3000:]
            try:
                if requests.get(f"{self.url}/api/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError("restake-qa serve did not start in 180 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@pytest.mark.slow
def test_a_rebuild_started_from_the_console_and_killed_leaves_the_live_index_serving(
    tmp_path, real_settings, real_engine, real_embedder, tools
):
    data, corpus = tmp_path / "data", tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (data / "cache").mkdir(parents=True)
    shutil.copy2(real_settings.data_path / "cache" / "embeddings.sqlite", data / "cache")
    old = build_index(corpus, data, real_embedder, make_settings(tmp_path, corpus_dir=str(corpus)), tools=tools).version
    server = ServeProcess(data, corpus)
    try:
        page = _notes_page(200).encode()
        r = requests.post(
            f"{server.url}/api/admin/pages",
            headers=AUTH,
            files={"file": ("restaking-notes.zh-tw.md", page)},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        seen: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill once the model is embedding the new page
            job = requests.get(f"{server.url}/api/reindex/{job_id}", headers=AUTH, timeout=10).json()
            seen = job["progress"]
            if job["status"] != "running" or any(line.strip().startswith("embedded ") for line in seen):
                break
            time.sleep(0.05)
        assert job["status"] == "running", job
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
    finally:
        server.stop()
    assert not any(line.startswith(("writing build", "published")) for line in seen), seen

    # the live index is the old one, loads, and a new server answers from it
    assert current_version(data) == old
    assert load_index(data, expected_model=real_embedder.model_id).version == old
    assert [p.name for p in builds_dir(data).iterdir() if not p.name.startswith(".")] == [old]
    again = ServeProcess(data, corpus)
    try:
        answer = requests.post(f"{again.url}/api/answer", json={"question": "再質押有哪些風險？"}, timeout=60).json()
        assert answer["index_version"] == old and not answer["refused"]
        assert all("restaking-notes" not in c["url"] for c in answer["citations"])
        # the saved page waits in the corpus, and the console says it is not built yet
        status = requests.get(f"{again.url}/api/admin/status", headers=AUTH, timeout=10).json()
        assert status["index"]["version"] == old and status["corpus"]["changed_since_build"] is True
    finally:
        again.stop()
    assert (corpus / "restaking-notes.zh-tw.md").read_bytes() == page

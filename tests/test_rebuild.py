"""Rebuilding the index from edited content while a real server answers.

The issue's tests run with the real model behind a real waitress server: edits reindexed
through the API are answered and cited (new anchor, new wording, deleted section gone), a
question loop during a reindex sees no error and no mixed answer, a CLI build killed with
SIGKILL leaves the server answering from the old index, and only changed texts are embedded.
The kill-at-every-step test uses the tiny HashEmbedder, since what it checks is the folder
plumbing, in child processes that SIGKILL themselves at chosen points of a build.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from restake_qa import create_app
from restake_qa.build import CACHE_COMMIT_EVERY, build_index, build_lock, rollback
from restake_qa.cache import EmbeddingCache
from restake_qa.embedding import HashEmbedder
from restake_qa.errors import IndexLoadError
from restake_qa.index import builds_dir, current_version, load_index
from restake_qa.service import Engine

from helpers import CORPUS, QUESTIONS, ROOT, LiveServer, make_settings

PAGE = "restaking.zh-tw.md"
TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

NEW_SECTION = (
    "\n## 再質押保險基金 {#restaking-insurance-fund}\n\n"
    "再質押保險基金是一種假設性的互助機制：當營運者因軟體錯誤而被罰沒時，基金會從累積的手續費中"
    "補償受影響的再質押者。 保險基金的規模通常是總再質押量的百分之二。\n"
)
NEW_QUESTION = "再質押保險基金如何補償再質押者？"
OLD_WORDING = "在有再質押的這個世界裡，AVS 和質押者都能從互相找到對方並用安全性換取額外獎勵中獲益。"
NEW_WORDING = "在有再質押的世界中，AVS 可以向質押者租用經濟安全，質押者則因此多賺一份報酬，雙方互利共生。"
CHANGE_QUESTION = "在有再質押的世界裡，AVS 和質押者得到什麼好處？"
DELETED = "what-are-some-examples-of-restaking"
SECOND_PAGE = """---
title: 質押池
lang: zh-tw
---

質押池讓持有少於 32 ETH 的人也能一起參與質押。

## 什麼是質押池？ {#what-is-staking-pools}

質押池是一種協作方式，許多小額持有者把各自的 ETH 匯集起來，由池子的節點營運方運行驗證者。

## 進階 {#advanced}

質押池的提款佇列由池子的智能合約管理，贖回代幣時須排隊等候池子從信標鏈取回 ETH。
"""
SECOND_QUESTION = "質押池的提款佇列由誰管理？"


def _deleted_questions() -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.read_text("utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows if DELETED in r["sections"]]


# fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_data(tmp_path_factory, real_engine, real_settings, real_embedder, tools) -> Path:
    """A data folder holding one real build of the shipped page; its embedding cache is the
    session index's, so nothing is embedded again."""
    base = tmp_path_factory.mktemp("rebuild-base") / "data"
    (base / "cache").mkdir(parents=True)
    shutil.copy2(real_settings.data_path / "cache" / "embeddings.sqlite", base / "cache")
    build_index(CORPUS, base, real_embedder, make_settings(base.parent), tools=tools)
    return base


class Site:
    """A copied data folder and corpus, an Engine over them and the real app behind waitress."""

    def __init__(self, tmp: Path, base: Path, corpus: Path, embedder, tools) -> None:
        self.corpus = corpus
        self.data = tmp / "data"
        shutil.copytree(base, self.data)
        self.settings = make_settings(tmp, corpus_dir=str(corpus), rate_limit_per_minute=0, reload_interval=0.05)
        self.engine = Engine(self.settings, embedder=embedder, tools=tools)
        self.server = LiveServer(create_app(self.settings.replace(admin_token=TOKEN), engine=self.engine))
        self.server.start()
        self.http = requests.Session()

    @property
    def page(self) -> Path:
        return self.corpus / PAGE

    def edit(self, old: str, new: str) -> None:
        text = self.page.read_text("utf-8")
        assert old in text
        self.page.write_text(text.replace(old, new), encoding="utf-8")

    def ask(self, question: str) -> dict:
        r = self.http.post(f"{self.server.url}/api/answer", json={"question": question}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def reindex(self) -> dict:
        """POST /api/reindex, poll the job until it ends, and wait until answers come from it."""
        r = self.http.post(f"{self.server.url}/api/reindex", headers=AUTH, timeout=10)
        assert r.status_code == 202, r.text
        job = self.wait_job(r.json()["job_id"])
        assert job["status"] == "done", job
        self.wait_version(job["report"]["version"])
        return job

    def wait_job(self, job_id: str, limit: float = 120) -> dict:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            job = self.http.get(f"{self.server.url}/api/reindex/{job_id}", headers=AUTH, timeout=10).json()
            assert isinstance(job["progress"], list)
            if job["status"] != "running":
                return job
            time.sleep(0.1)
        raise AssertionError(f"reindex job {job_id} did not finish in {limit} s")

    def wait_version(self, version: str, limit: float = 30) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.http.get(f"{self.server.url}/api/health", timeout=10).json()["index_version"] == version:
                return
            time.sleep(0.05)
        raise AssertionError(f"the server did not swap to {version} in {limit} s")

    def close(self) -> None:
        self.http.close()  # first, so that no kept-alive connection holds the server open
        self.server.stop()


@pytest.fixture
def site(tmp_path, base_data, corpus_copy, real_embedder, tools):
    s = Site(tmp_path, base_data, corpus_copy, real_embedder, tools)
    yield s
    s.close()


def cited(answer: dict) -> list[tuple[str, str]]:
    return [(c["url"], c["snippet"]) for c in answer["citations"]]


def sections_of(data: Path, version: str) -> dict[str, dict]:
    """url → section of one build, as the build folder stores them."""
    rows = json.loads((builds_dir(data) / version / "sections.json").read_text("utf-8"))
    return {row["url"]: row for row in rows}


def assert_from_version(answer: dict, sections: dict[str, dict]) -> None:
    """Every citation and passage of ``answer`` is text of the build it names."""
    for c in answer["citations"]:
        section = sections.get(c["url"])
        assert section is not None, f"{c['url']} is not a section of {answer['index_version']}"
        start, end = c["span"]
        assert section["text"][start:end] == c["snippet"], (answer["index_version"], c)
    for p in answer["passages"]:
        section = sections.get(p["url"])
        assert section is not None and p["text"] in section["text"], (answer["index_version"], p)
    for s in answer.get("suggestions") or []:
        assert s["url"] in sections, (answer["index_version"], s)


# the tests ----------------------------------------------------------------------------
def test_edits_reindexed_through_the_api_are_answered_and_cited(site):
    before = site.ask(CHANGE_QUESTION)
    assert any(snippet == OLD_WORDING for _, snippet in cited(before))
    deleted_url = f"https://ethereum.org/zh-tw/restaking/#{DELETED}"
    deleted_questions = _deleted_questions()
    assert any(deleted_url in [u for u, _ in cited(site.ask(q))] for q in deleted_questions)

    # add a section with its own anchor
    site.page.write_text(site.page.read_text("utf-8") + NEW_SECTION, encoding="utf-8")
    job = site.reindex()
    assert job["report"]["sections_added"] == [f"{PAGE}#restaking-insurance-fund"]
    assert any("published" in line for line in job["progress"])
    answer = site.ask(NEW_QUESTION)
    assert answer["index_version"] == job["report"]["version"] and not answer["refused"]
    assert answer["citations"][0]["url"] == "https://ethereum.org/zh-tw/restaking/#restaking-insurance-fund"
    assert "保險基金" in answer["answer"]

    # change a paragraph: the old wording is never cited again, the new one is
    site.edit(OLD_WORDING, NEW_WORDING)
    job = site.reindex()
    assert job["report"]["sections_changed"] == [f"{PAGE}#why-do-we-need-restaking"]
    answer = site.ask(CHANGE_QUESTION)
    assert any(snippet == NEW_WORDING for _, snippet in cited(answer))
    for q in (CHANGE_QUESTION, "為什麼我們需要再質押？", "AVS 和質押者如何互相找到對方？"):
        a = site.ask(q)
        assert all(OLD_WORDING not in snippet for _, snippet in cited(a))
        assert all(OLD_WORDING not in p["text"] for p in a["passages"])

    # delete a section: it is never cited again
    text = site.page.read_text("utf-8")
    start, end = text.index("## 再質押有哪些例子？"), text.index("## 我能從再質押中賺多少錢？")
    site.page.write_text(text[:start] + text[end:], encoding="utf-8")
    job = site.reindex()
    assert job["report"]["sections_removed"] == [f"{PAGE}#{DELETED}"]
    for q in [*deleted_questions, "再質押有哪些例子？"]:
        a = site.ask(q)
        assert deleted_url not in [u for u, _ in cited(a)] + [p["url"] for p in a["passages"]]
        assert all(s.get("url") != deleted_url for s in a["suggestions"])
    sections = site.http.get(f"{site.server.url}/api/sections").json()["sections"]
    anchors = [s["anchor"] for s in sections if s["source"] == PAGE]  # (the en and zh pages keep theirs)
    assert DELETED not in anchors and "restaking-insurance-fund" in anchors


def test_a_second_page_is_cited_with_its_own_url(site):
    (site.corpus / "staking-pools.zh-tw.md").write_text(SECOND_PAGE, encoding="utf-8")
    job = site.reindex()
    assert set(job["report"]["sections_added"]) == {
        "staking-pools.zh-tw.md#",
        "staking-pools.zh-tw.md#what-is-staking-pools",
        "staking-pools.zh-tw.md#advanced",
    }
    answer = site.ask(SECOND_QUESTION)
    assert answer["citations"][0]["url"] == "https://ethereum.org/zh-tw/staking-pools/#advanced"
    # the same anchor on the restaking page keeps its own address
    sections = sections_of(site.data, job["report"]["version"])
    assert {
        "https://ethereum.org/zh-tw/staking-pools/#advanced",
        "https://ethereum.org/zh-tw/restaking/#advanced",
    } <= set(sections)
    assert site.ask("再質押有哪些風險？")["citations"][0]["url"].startswith("https://ethereum.org/zh-tw/restaking/#")


def test_reindex_waits_for_a_running_build_and_a_second_one_gets_409(site):
    with build_lock(site.data):  # as if `restake-qa build` were running
        r = site.http.post(f"{site.server.url}/api/reindex", headers=AUTH, timeout=10)
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        second = site.http.post(f"{site.server.url}/api/reindex", headers=AUTH, timeout=10)
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "reindex_running" and second.json()["error"]["job_id"] == job_id
        deadline = time.monotonic() + 10
        job = {}
        while time.monotonic() < deadline:  # the progress is readable while the job runs
            job = site.http.get(f"{site.server.url}/api/reindex/{job_id}", headers=AUTH, timeout=10).json()
            if any("waiting" in line for line in job["progress"]):
                break
            time.sleep(0.05)
        assert job["status"] == "running" and any("another build" in line for line in job["progress"])
    job = site.wait_job(job_id)
    assert job["status"] == "done" and job["report"]["up_to_date"]


def test_questions_during_a_reindex_never_fail_and_never_mix_builds(site):
    old = current_version(site.data)
    questions = [
        NEW_QUESTION,
        CHANGE_QUESTION,
        "再質押有哪些例子？",
        "再質押有哪些風險？",
        "什麼是 AVS？",
        "How do I start restaking?",
        "再质押和质押有什么区别？",
    ]
    results: list[tuple[int, dict | str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    new_version: list[str] = []
    limit, deadline = 200, time.monotonic() + 60  # bounded load on 127.0.0.1

    def loop(offset: int) -> None:
        with requests.Session() as session:
            ask_until_done(session, offset)

    def ask_until_done(session: requests.Session, offset: int) -> None:
        i = offset
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                if len(results) >= limit:
                    return
            question = questions[i % len(questions)]
            try:
                r = session.post(f"{site.server.url}/api/answer", json={"question": question}, timeout=30)
                item = (r.status_code, r.json() if r.status_code == 200 else r.text, question)
            except requests.RequestException as exc:
                item = (0, repr(exc), question)
            i += 1
            with lock:
                results.append(item)
                fresh = sum(
                    1
                    for code, body, _ in results
                    if code == 200 and new_version and body["index_version"] == new_version[0]
                )
            if fresh >= 15:
                stop.set()
            time.sleep(0.05)  # pace the loop so that the budget outlasts a slow reindex

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(2)]
    for w in workers:
        w.start()
    while len(results) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    site.page.write_text(site.page.read_text("utf-8").replace(OLD_WORDING, NEW_WORDING) + NEW_SECTION, encoding="utf-8")
    r = site.http.post(f"{site.server.url}/api/reindex", headers=AUTH, timeout=10)
    assert r.status_code == 202
    job = site.wait_job(r.json()["job_id"])
    assert job["status"] == "done", job
    new_version.append(job["report"]["version"])
    for w in workers:
        w.join(timeout=90)
    stop.set()

    errors = [item for item in results if item[0] != 200]
    assert not errors, errors[:3]
    versions = {body["index_version"] for _, body, _ in results}
    assert versions == {old, new_version[0]}, f"{len(results)} answers (limit {limit}) from {versions}"
    builds = {v: sections_of(site.data, v) for v in versions}
    for _, body, _ in results:
        assert_from_version(body, builds[body["index_version"]])
    # The edits exist in the new build only, so an answer mixing builds fails the check above;
    # and the new build's answers do use them.
    for _, body, question in results:
        if body["index_version"] == new_version[0] and question == NEW_QUESTION:
            assert [c["url"] for c in body["citations"]][:1] == [
                "https://ethereum.org/zh-tw/restaking/#restaking-insurance-fund"
            ], body


def _generated_page(n: int) -> str:
    """A page of ``n`` sentences no earlier build has seen, in sections of ten."""
    lines = ["---", "title: 再質押筆記", "lang: zh-tw", "---", ""]
    for i in range(n):
        if i % 10 == 0:
            lines += ["", f"## 筆記第 {i // 10 + 1} 部分 {{#notes-{i // 10 + 1}}}", ""]
        lines.append(
            f"第 {i} 則筆記：營運者編號 {i * 7} 為 AVS 編號 {i * 13} 運行驗證軟體，每月回報 {i % 9 + 1} 次運行時間。"
        )
    return "\n".join(lines) + "\n"


def test_a_cli_build_killed_midway_leaves_the_server_on_the_old_index(site, real_embedder, tools):
    old = current_version(site.data)
    (site.corpus / "restaking-notes.zh-tw.md").write_text(_generated_page(200), encoding="utf-8")
    env = {**os.environ, "RESTAKE_QA_DATA_DIR": str(site.data), "RESTAKE_QA_CORPUS_DIR": str(site.corpus)}
    build = subprocess.Popen(
        [sys.executable, "-m", "restake_qa.cli", "build"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    seen = []
    try:
        for line in build.stderr:  # kill once more than one cache commit's worth is embedded
            seen.append(line.rstrip())
            if line.strip().startswith("embedded ") and int(line.split()[1].split("/")[0]) > CACHE_COMMIT_EVERY:
                build.send_signal(signal.SIGKILL)
                break
    finally:
        build.kill()
        build.wait(timeout=30)
    assert build.returncode == -signal.SIGKILL, seen
    assert not any(line.startswith(("writing build", "published")) for line in seen), seen  # killed midway
    total = next(int(line.split()[1]) for line in seen if line.startswith("embedding "))

    assert current_version(site.data) == old
    assert load_index(site.data, expected_model=real_embedder.model_id).version == old
    for q in ("再質押有哪些風險？", "營運者編號 189 為哪個 AVS 運行驗證軟體？"):
        answer = site.ask(q)
        assert answer["index_version"] == old
        assert all("restaking-notes" not in url for url, _ in cited(answer))

    # the next build succeeds, reuses what the killed one committed, and the server swaps to it
    report = build_index(site.corpus, site.data, real_embedder, site.settings, tools=tools)
    assert report.version != old and report.previous == old
    assert 0 < report.embedded <= total - CACHE_COMMIT_EVERY
    assert not list(builds_dir(site.data).glob(".staging-*"))
    site.wait_version(report.version)
    answer = site.ask("第 27 則筆記：營運者編號 189 為哪個 AVS 運行驗證軟體？")
    assert answer["citations"][0]["url"] == "https://ethereum.org/zh-tw/restaking-notes/#notes-3"


class CountingEmbedder:
    """The real model, counting the passages and the queries (section titles) it embeds."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_id, self.source, self.dimension = inner.model_id, inner.source, inner.dimension
        self.batch_size = getattr(inner, "batch_size", 32)
        self.passages: list[str] = []
        self.queries: list[str] = []

    def embed_queries(self, texts):
        self.queries.extend(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts, progress=None):
        self.passages.extend(texts)
        return self.inner.embed_passages(texts, progress=progress)


def cache_keys(data: Path) -> set[str]:
    db = sqlite3.connect(data / "cache" / "embeddings.sqlite")
    try:
        return {key for (key,) in db.execute("SELECT key FROM embeddings")}
    finally:
        db.close()


def test_only_changed_chunks_are_embedded(tmp_path, base_data, corpus_copy, real_embedder, tools):
    data = tmp_path / "data"
    shutil.copytree(base_data, data)
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    before = load_index(data)
    old_texts = {c.embedding_text for c in before.chunks} | {s.text for s in before.sentences}
    cached = cache_keys(data)
    page = corpus_copy / PAGE
    page.write_text(page.read_text("utf-8").replace(OLD_WORDING, NEW_WORDING) + NEW_SECTION, encoding="utf-8")

    counter = CountingEmbedder(real_embedder)
    report = build_index(corpus_copy, data, counter, settings, tools=tools)
    after = load_index(data)
    new_chunks = [c for c in after.chunks if c.embedding_text not in old_texts]
    new_sentences = [s for s in after.sentences if s.text not in old_texts]
    # the new chunks and sentences went to the model, each once, and nothing it had embedded
    # before; the new section's title was embedded as a question
    embedded = set(counter.passages)
    assert len(embedded) == len(counter.passages) == report.embedded - 1
    assert counter.queries[:1] == ["再質押保險基金"]  # the validation's smoke queries follow
    assert not {EmbeddingCache.key(t) for t in embedded} & cached
    assert {c.embedding_text for c in new_chunks} | {s.text for s in new_sentences} <= embedded
    assert len(new_chunks) == report.chunks_added == 2  # the changed chunk and the new section's
    assert len([t for t in counter.passages if t in {c.embedding_text for c in after.chunks}]) == 2
    assert report.embedded == len(cache_keys(data) - cached)
    assert report.reused > 10 * report.embedded  # a handful, not the page
    assert report.sections_added == (f"{PAGE}#restaking-insurance-fund",)
    assert report.sections_changed == (f"{PAGE}#why-do-we-need-restaking",)
    # and the stored vectors are the model's vectors of those texts
    fresh = real_embedder.embed_passages([c.embedding_text for c in new_chunks])
    rows = [after.chunks.index(c) for c in new_chunks]
    assert (abs(after.vectors.reconstruct_n(0, after.vectors.ntotal)[rows] - fresh) < 1e-4).all()


def test_editing_only_the_english_page_re_embeds_only_english_text(tmp_path, corpus_copy, tools):
    """Plumbing (tiny embedder): the page's other versions keep their vectors from the cache."""
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    data = settings.data_path
    build_index(corpus_copy, data, HashEmbedder(), settings, tools=tools)
    page = corpus_copy / "restaking.en.md"
    text = page.read_text("utf-8")
    assert "a few projects have emerged" in text
    page.write_text(text.replace("a few projects have emerged", "several projects have appeared"), encoding="utf-8")

    counter = CountingEmbedder(HashEmbedder())
    report = build_index(corpus_copy, data, counter, settings, tools=tools)
    after = load_index(data)
    english = {c.embedding_text for c in after.chunks if c.section_key.startswith("restaking.en.md#")}
    english |= {s.text for s in after.sentences if s.section_key.startswith("restaking.en.md#")}
    assert counter.passages and set(counter.passages) <= english  # nothing of the zh-TW or zh page
    assert any("several projects have appeared" in p for p in counter.passages)
    assert report.sections_changed == ("restaking.en.md#what-are-some-examples-of-restaking",)
    assert report.reused > 10 * report.embedded


# plumbing: a build killed at every step ---------------------------------------------------------
_CHILD = r"""
import os, shutil, signal, sys
from pathlib import Path
from restake_qa import build as ix
from restake_qa import cache
from restake_qa.config import load_settings
from restake_qa.embedding import HashEmbedder
from restake_qa.text import load_text_tools

data, corpus, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
def die(*_args, **_kw):
    os.kill(os.getpid(), signal.SIGKILL)

embedder = HashEmbedder()
calls = []
if point == "embedding":  # after the first cache commit, inside the second model call
    embed = embedder.embed_passages
    def embed_passages(texts, progress=None):
        calls.append(1)
        if len(calls) == 2:
            die()
        return embed(texts, progress)
    embedder.embed_passages = embed_passages
elif point == "cache-write":  # halfway through writing the second batch into SQLite
    put = cache.EmbeddingCache.put_many
    def put_many(self, model, items):
        calls.append(1)
        if len(calls) == 1:
            return put(self, model, items)
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)",
                            [(model, key, 1, b"torn", "torn") for key, _ in items])
        die()
    cache.EmbeddingCache.put_many = put_many
elif point == "staging":  # the staging folder is complete, before validation
    ix._validate = die
elif point == "renamed":  # renamed into builds/ but CURRENT not switched
    ix.publish = die
elif point == "current-tmp":  # the new CURRENT written to its temp file, not yet renamed
    replace = os.replace
    def replace_or_die(src, dst):
        if Path(dst).name == "CURRENT":
            die()
        return replace(src, dst)
    os.replace = replace_or_die
elif point == "prune":  # published; an old build half deleted
    rmtree = shutil.rmtree
    def rmtree_or_die(path, *a, **kw):
        if Path(path).name.startswith(".trash-"):
            (Path(path) / "manifest.json").unlink()
            die()
        return rmtree(path, *a, **kw)
    shutil.rmtree = rmtree_or_die
settings = load_settings({"data_dir": str(data), "corpus_dir": str(corpus)}, environ={})
ix.build_index(corpus, data, embedder, settings, tools=load_text_tools(corpus))
print("the build was not killed")
"""
KILL_POINTS = ["embedding", "cache-write", "staging", "renamed", "current-tmp", "prune"]


def test_a_build_killed_at_any_step_leaves_a_loadable_index_and_the_next_build_cleans_up(tmp_path, tools):
    template = tmp_path / "template"
    shutil.copytree(CORPUS, template / "corpus")
    settings = make_settings(template, corpus_dir=str(template / "corpus"))
    page = template / "corpus" / PAGE
    versions = []
    for extra in ("", "\n補充一。\n", "\n補充二。\n"):  # three builds, so that a fourth prunes one
        page.write_text(page.read_text("utf-8") + extra, encoding="utf-8")
        versions.append(
            build_index(template / "corpus", template / "data", HashEmbedder(), settings, tools=tools).version
        )
    live = versions[-1]
    template_cache = cache_keys(template / "data")
    (template / "corpus" / "restaking-notes.zh-tw.md").write_text(_generated_page(80), encoding="utf-8")

    children = {}
    for point in KILL_POINTS:
        shutil.copytree(template, tmp_path / point)
        children[point] = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path / point / "data"), str(tmp_path / point / "corpus"), point],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for point, child in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == -signal.SIGKILL, (point, out, err[-2000:])

    for point in KILL_POINTS:
        data, corpus = tmp_path / point / "data", tmp_path / point / "corpus"
        published = point == "prune"
        index = load_index(data, expected_model=HashEmbedder().model_id)
        assert (index.version != live) if published else (index.version == live), point
        assert all((builds_dir(data) / v).is_dir() for v in versions[1:]), point  # live and previous kept
        if point == "renamed":  # a complete build that was never published: never loaded
            orphans = {p.name for p in builds_dir(data).iterdir() if not p.name.startswith(".")} - set(versions)
            assert len(orphans) == 1 and orphans.pop() != current_version(data)
        s = make_settings(tmp_path / point, corpus_dir=str(corpus))
        embedder = HashEmbedder()
        report = build_index(corpus, data, embedder, s, tools=tools)
        leftovers = [
            p.name
            for p in [*builds_dir(data).iterdir(), *data.iterdir()]
            if p.name.startswith((".staging-", ".trash-", ".CURRENT"))
        ]
        assert not leftovers, (point, leftovers)
        assert report.repaired == 0, point  # a torn cache write was rolled back, not half kept
        if published:
            assert report.up_to_date and report.version == index.version
        else:
            assert report.previous == live and current_version(data) == report.version
        rebuilt = load_index(data)
        if point in ("embedding", "cache-write"):  # what the killed build committed is reused
            assert report.embedded == len(cache_keys(data) - template_cache) - CACHE_COMMIT_EVERY > 0, point
        else:  # everything was embedded and committed before the kill
            assert report.embedded == 0, point
        fresh = HashEmbedder().embed_passages([c.embedding_text for c in rebuilt.chunks])
        assert (abs(rebuilt.vectors.reconstruct_n(0, rebuilt.vectors.ntotal) - fresh) < 1e-6).all(), point


def test_validation_refuses_a_build_whose_vectors_do_not_match_its_chunks(tmp_path, corpus_copy, tools, monkeypatch):
    from restake_qa import index as ix

    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    data = settings.data_path
    good = build_index(corpus_copy, data, HashEmbedder(), settings, tools=tools)
    make = ix.make_vector_index
    monkeypatch.setattr(ix, "make_vector_index", lambda vectors: make(vectors[::-1].copy()))
    with pytest.raises(IndexLoadError, match="did not find its own section"):
        build_index(corpus_copy, data, HashEmbedder(), settings, tools=tools, force=True)
    assert current_version(data) == good.version and load_index(data).version == good.version
    assert [p.name for p in builds_dir(data).iterdir()] == [good.version]


def test_prune_keeps_the_live_and_previous_builds_after_rollbacks(tmp_path, corpus_copy, tools):
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    data = settings.data_path
    page = corpus_copy / PAGE
    versions = []
    for i in range(4):
        page.write_text(page.read_text("utf-8") + f"\n補充 {i}。\n", encoding="utf-8")
        versions.append(build_index(corpus_copy, data, HashEmbedder(), settings, tools=tools).version)
    assert rollback(data) == versions[2] and rollback(data) == versions[1]
    page.write_text(page.read_text("utf-8") + "\n補充 4。\n", encoding="utf-8")
    report = build_index(corpus_copy, data, HashEmbedder(), settings, tools=tools)
    assert report.previous == versions[1]
    kept = sorted(p.name for p in builds_dir(data).iterdir())
    assert report.version in kept and versions[1] in kept and versions[0] not in kept
    assert rollback(data) == versions[1] and load_index(data).version == versions[1]


def test_cli_build_reports_what_was_added_changed_and_removed(tmp_path, corpus_copy, tools):
    from click.testing import CliRunner

    from restake_qa import cli

    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    data = settings.data_path
    build_index(corpus_copy, data, HashEmbedder(), settings, tools=tools)
    page = corpus_copy / PAGE
    text = page.read_text("utf-8").replace(OLD_WORDING, NEW_WORDING) + NEW_SECTION
    start, end = text.index("## 再質押有哪些例子？"), text.index("## 我能從再質押中賺多少錢？")
    page.write_text(text[:start] + text[end:], encoding="utf-8")
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "_load_embedder", lambda settings: HashEmbedder())
        result = runner.invoke(cli.main, ["build", "--corpus", str(corpus_copy), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert f"added   {PAGE}#restaking-insurance-fund" in result.output
    assert f"changed {PAGE}#why-do-we-need-restaking" in result.output
    assert f"removed {PAGE}#{DELETED}" in result.output
    assert "--rollback" in result.output


def test_an_engine_keeps_serving_when_a_new_version_fails_to_load_and_follows_glossary_edits(tmp_path, corpus_copy):
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy), reload_interval=0.0)
    data = settings.data_path
    embedder = HashEmbedder()
    engine = Engine(settings, embedder=embedder)  # its own text tools, from the corpus folder
    first = engine.build()
    (data / "CURRENT").write_text("20990101T000000000000Z-missing\n", encoding="utf-8")
    for _ in range(20):  # reloads are tried in the background; the old build answers meanwhile
        engine.check_for_new_build()
        answer, version = engine.answer("再質押有哪些風險？")
        assert version == first.version and answer.retrieval.hits
        if engine.error:
            break
        time.sleep(0.05)
    assert "20990101T000000000000Z-missing" in engine.error and engine.health()["index_version"] == first.version

    glossary = corpus_copy / "glossary.toml"
    glossary.write_text(
        glossary.read_text("utf-8") + '\n[[term]]\nterm = "保險基金"\nenglish = "insurance fund"\n', encoding="utf-8"
    )
    (corpus_copy / PAGE).write_text((corpus_copy / PAGE).read_text("utf-8") + NEW_SECTION, encoding="utf-8")
    second = engine.build()
    assert engine.snapshot().index.version == second.version and engine.error is None
    assert "保險基金" in {t.term for t in engine.tools.glossary}
    assert engine.snapshot().retriever.tools is engine.tools  # questions are tokenised like the new index


def test_a_new_stop_word_or_vocabulary_word_rebuilds_the_index(tools, monkeypatch):
    from restake_qa import build as build_module
    from restake_qa.config import load_settings
    from restake_qa.corpus import load_corpus

    sections = load_corpus(load_settings().corpus_path)
    before = build_module.tokenizer_probe(tools, sections)
    monkeypatch.setattr(build_module, "STOPWORDS", build_module.STOPWORDS | {"restaking"})
    assert build_module.tokenizer_probe(tools, sections) != before
    # …and so does a new word of the vocabulary (it changes how jieba cuts questions and pages)
    monkeypatch.undo()
    assert build_module.tokenizer_probe(tools, sections) == before
    names, words, names_en = build_module.vocabulary()
    monkeypatch.setattr(build_module, "vocabulary", lambda: (names, (*words, "再質押"), names_en))
    assert build_module.tokenizer_probe(tools, sections) != before

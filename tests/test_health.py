"""/api/health's two views, errors that clear when the problem is fixed, the last failed
reindex, and cancelling a running reindex through the API (the tiny embedder: plumbing)."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from restake_qa import create_app
from restake_qa.build import build_index, build_lock, rollback
from restake_qa.embedding import HashEmbedder
from restake_qa.errors import BuildCancelledError
from restake_qa.health import scrub
from restake_qa.index import builds_dir, current_path, current_version
from restake_qa.service import Engine

from helpers import make_settings, notes_page

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGE = "restaking.zh-tw.md"


class SlowEmbedder(HashEmbedder):
    """The tiny embedder, slowed down per passage batch so that a build takes a while."""

    def embed_passages(self, texts, progress=None):
        time.sleep(0.02)
        return super().embed_passages(texts, progress)


@pytest.fixture
def site(tmp_path, corpus_copy):
    settings = make_settings(
        tmp_path, corpus_dir=str(corpus_copy), admin_token=TOKEN, reload_interval=0.0, rate_limit_per_minute=0
    )
    embedder = SlowEmbedder()
    build_index(corpus_copy, settings.data_path, embedder, settings)
    engine = Engine(settings, embedder=embedder)
    return settings, engine, create_app(settings, engine=engine).test_client()


def _health(client, admin: bool = False) -> tuple[int, dict]:
    r = client.get("/api/health", headers=AUTH if admin else {})
    return r.status_code, r.get_json()


def _until(client, done, limit: float = 20) -> tuple[int, dict]:
    """Poll the public health view until ``done(body)`` (reloads happen in the background)."""
    deadline = time.monotonic() + limit
    while True:
        status, body = _health(client)
        if done(body) or time.monotonic() > deadline:
            return status, body
        time.sleep(0.05)


def _wait(client, job_id: str, limit: float = 120) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        job = client.get(f"/api/reindex/{job_id}", headers=AUTH).get_json()
        if job["status"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running after {limit} s")


def test_scrub_keeps_names_and_drops_absolute_paths(tmp_path):
    data = tmp_path / "data"
    message = f"{data}/builds/v1/vectors.faiss is corrupted; see /etc/passwd and https://ethereum.org/zh-tw/restaking/"
    out = scrub(message, {"<data_dir>": data})
    assert out.startswith("<data_dir>/builds/v1/vectors.faiss is corrupted")
    assert "…/passwd" in out and "/etc" not in out and "https://ethereum.org/zh-tw/restaking/" in out
    assert str(tmp_path) not in out


def test_strangers_get_status_and_counts_the_admin_gets_details_without_paths(site, tmp_path):
    settings, engine, client = site
    live = current_version(settings.data_path)
    # a newer build is published but cannot load: the old one serves on
    newer = build_index(settings.corpus_path, settings.data_path, HashEmbedder(), settings, force=True).version
    vectors = builds_dir(settings.data_path) / newer / "vectors.faiss"
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vectors.write_bytes(bytes(data))
    status, public = _until(client, lambda body: body["status"] != "ok")  # it loads in the background
    assert status == 200 and public["index_version"] == live and public["status"] == "degraded"
    assert public["problems"] == ["newer_build_unloadable"]
    assert set(public) == {"status", "index_version", "chunks", "sections", "problems"}
    assert public["chunks"] > 0 and public["sections"] > 0
    text = json.dumps(public)
    assert "/" not in text.replace("/api", "") and "faiss" not in text and "model" not in text

    status, admin = _health(client, admin=True)
    assert status == 200 and admin["status"] == "degraded"
    assert admin["error"].startswith(f"<data_dir>/builds/{newer}/vectors.faiss is corrupted"), admin["error"]
    assert str(tmp_path) not in json.dumps(admin) and admin["model"] == "test/hash-embedder"

    # fixed (the broken build rolled back): the error is gone at once, without a new build
    assert rollback(settings.data_path) == live
    status, public = _until(client, lambda body: body["status"] == "ok")
    assert status == 200 and public["status"] == "ok" and public["problems"] == []
    assert _health(client, admin=True)[1]["error"] is None


def test_a_build_repaired_in_place_clears_its_error(site):
    settings, engine, client = site
    build = current_path(settings.data_path)
    original = (build / "sentences.npy").read_bytes()
    fresh = Engine(settings, embedder=engine.embedder)
    (build / "sentences.npy").write_bytes(b"not numpy")
    broken = Engine(settings, embedder=engine.embedder)  # a process started while the file was broken
    app = create_app(settings, engine=broken).test_client()
    assert _health(app)[0] == 503 and _health(app)[1]["problems"] == ["index_unavailable"]
    (build / "sentences.npy").write_bytes(original)
    status, body = _until(app, lambda body: body["status"] == "ok")
    assert status == 200 and body["status"] == "ok" and body["problems"] == []
    assert fresh.health()["error"] is None


def test_the_last_failed_reindex_shows_until_one_succeeds(site):
    settings, engine, client = site
    glossary = settings.corpus_path / "glossary.toml"
    good = glossary.read_text("utf-8")
    glossary.write_text(good + "\n[[term]\nbroken = \n", encoding="utf-8")
    job = _wait(client, client.post("/api/reindex", headers=AUTH).get_json()["job_id"])
    assert job["status"] == "failed"
    status, public = _health(client)
    assert status == 200 and public["status"] == "degraded" and public["problems"] == ["last_reindex_failed"]
    assert public["reindex"]["status"] == "failed" and "error" not in public["reindex"]
    admin = _health(client, admin=True)[1]
    assert admin["reindex"]["id"] == job["id"] and "glossary.toml" in admin["reindex"]["error"]
    assert str(settings.corpus_path) not in admin["reindex"]["error"]

    glossary.write_text(good, encoding="utf-8")
    job = _wait(client, client.post("/api/reindex", headers=AUTH).get_json()["job_id"])
    assert job["status"] == "done"
    assert _health(client)[1]["problems"] == [] and _health(client)[1]["status"] == "ok"


def test_a_running_reindex_is_cancelled_through_the_api_and_the_live_index_serves_on(site):
    settings, engine, client = site
    live = current_version(settings.data_path)
    (settings.corpus_path / "notes.zh-tw.md").write_text(notes_page(1500, report=""), encoding="utf-8")
    cache = settings.data_path / "cache" / "embeddings.sqlite"
    cache_before = cache.stat().st_size
    job_id = client.post("/api/reindex", headers=AUTH).get_json()["job_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # cancel once embedding has begun
        job = client.get(f"/api/reindex/{job_id}", headers=AUTH).get_json()
        if any(line.strip().startswith("embedded ") for line in job["progress"]):
            break
        time.sleep(0.02)
    assert job["status"] == "running", job
    r = client.delete(f"/api/reindex/{job_id}", headers=AUTH)
    assert r.status_code == 202 and r.get_json()["cancel_requested"] is True
    job = _wait(client, job_id, limit=30)
    assert job["status"] == "cancelled" and "nothing was published" in job["error"]
    assert not any(line.startswith("published") for line in job["progress"])
    # nothing published, nothing left behind, the old index answers; what was embedded is kept
    assert current_version(settings.data_path) == live
    assert not list(builds_dir(settings.data_path).glob(".staging-*"))
    r = client.post("/api/answer", json={"question": "再質押有什麼風險？"})
    assert r.status_code == 200 and r.get_json()["index_version"] == live
    assert cache.stat().st_size > cache_before
    assert _health(client)[1]["reindex"]["status"] == "cancelled"
    # a finished job cannot be cancelled; an unknown one is 404; both need the token
    assert client.delete(f"/api/reindex/{job_id}", headers=AUTH).status_code == 409
    assert client.delete("/api/reindex/nosuchjob", headers=AUTH).status_code == 404
    assert client.delete(f"/api/reindex/{job_id}").status_code == 401


def test_a_build_waiting_for_the_lock_can_be_cancelled(tmp_path, corpus_copy):
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    stop = {"now": False}
    started = time.monotonic()
    with build_lock(settings.data_path):  # another build holds the lock
        import threading

        timer = threading.Timer(0.5, lambda: stop.update(now=True))
        timer.start()
        with pytest.raises(BuildCancelledError, match="cancelled"):
            build_index(
                corpus_copy, settings.data_path, HashEmbedder(), settings, wait=600, should_stop=lambda: stop["now"]
            )
    assert time.monotonic() - started < 300  # it did not wait out the 600 s
    assert current_version(settings.data_path) is None


def test_cancelling_between_any_two_steps_publishes_nothing(tmp_path, corpus_copy):
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    build_index(corpus_copy, settings.data_path, HashEmbedder(), settings)
    (corpus_copy / PAGE).write_text((corpus_copy / PAGE).read_text("utf-8") + "\n補充。\n", encoding="utf-8")
    checks = []

    def count() -> bool:
        checks.append(1)
        return False

    counted = tmp_path / "counted"
    shutil.copytree(settings.data_path, counted)
    build_index(corpus_copy, counted, HashEmbedder(), settings.replace(data_dir=str(counted)), should_stop=count)
    total = len(checks)
    assert total >= 5
    for k in np.unique(np.linspace(1, total, 6).astype(int)):
        data = tmp_path / f"at-{k}"
        shutil.copytree(settings.data_path, data)
        live = current_version(data)
        seen = []

        def stop_at(k: int = int(k), seen: list = seen) -> bool:
            seen.append(1)
            return len(seen) >= k

        with pytest.raises(BuildCancelledError):
            build_index(corpus_copy, data, HashEmbedder(), settings.replace(data_dir=str(data)), should_stop=stop_at)
        assert current_version(data) == live, k
        assert not list(builds_dir(data).glob(".staging-*")), k

"""`restake-qa serve` listens with the index it has while its startup build runs, and that build
can be cancelled through the API. A subprocess with the real model; the corpus gained a large
generated page, so the startup build has thousands of texts to embed (minutes) — the server
answers from the old index meanwhile. Bounded waits on 127.0.0.1; no timing is asserted."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.index import builds_dir, current_version
from restake_qa.models import DEFAULT_MODEL_ID

from helpers import CORPUS, ROOT, free_port, make_settings, notes_page

pytestmark = pytest.mark.slow
TOKEN = "startup-token"


def _get(port: int, path: str, method: str = "GET", headers: dict | None = None, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def test_serve_listens_with_the_old_index_while_the_startup_build_runs_and_it_can_be_cancelled(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    data = tmp_path / "data"
    old = build_index(
        corpus,
        data,
        HashEmbedder(dimension=384, model_id=DEFAULT_MODEL_ID),
        make_settings(tmp_path, data_dir=str(data)),
    ).version
    (corpus / "notes.zh-tw.md").write_text(notes_page(4000), encoding="utf-8")  # ~400 KB: minutes to embed

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTAKE_QA_") or k == "RESTAKE_QA_MODEL_CACHE"}
    env.update(RESTAKE_QA_CORPUS_DIR=str(corpus), RESTAKE_QA_DATA_DIR=str(data), RESTAKE_QA_ADMIN_TOKEN=TOKEN)
    log = tmp_path / "serve.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "restake_qa.cli", "serve", "--port", str(port)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            health = None
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status, health = _get(port, "/api/health")
                    if status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            assert health is not None, log.read_text()[-3000:]
            # the first answer already comes, from the old index, while the build runs
            assert health["index_version"] == old and health["reindex"]["status"] == "running", health
            status, answer = _get(port, "/api/answer", "POST", body={"question": "再質押有什麼風險？"})
            assert status == 200 and answer["index_version"] == old
            assert "published" not in log.read_text()

            auth = {"Authorization": f"Bearer {TOKEN}"}
            job_id = _get(port, "/api/health", headers=auth)[1]["reindex"]["id"]
            status, job = _get(port, f"/api/reindex/{job_id}", "DELETE", headers=auth)
            assert status == 202, job
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                job = _get(port, f"/api/reindex/{job_id}", headers=auth)[1]
                if job["status"] != "running":
                    break
                time.sleep(0.2)
            assert job["status"] == "cancelled", job
            status, health = _get(port, "/api/health")
            assert status == 200 and health["index_version"] == old and health["reindex"]["status"] == "cancelled"
            assert current_version(data) == old and not list(builds_dir(data).glob(".staging-*"))
            assert f"reindex job {job_id} cancelled" in log.read_text()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

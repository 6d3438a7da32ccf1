"""The question-answering engine one process shares: model, text tools and the live index.

The model and the jieba/OpenCC tools load once. The index is held as one immutable
``(Index, Retriever)`` snapshot: a request takes the snapshot once and uses it throughout, so
it never mixes two builds. A newly published build (``CURRENT`` changed, by ``restake-qa
build``, ``--rollback`` or ``POST /api/reindex``) is loaded in a background thread and
swapped in by one reference assignment; requests are never blocked or failed by a reload,
and a build that fails to load leaves the old one serving (the error shows in ``health``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answer import Answer, compose
from .config import corpus_dir
from .embedding import Embedder
from .index import BuildReport, Index, IndexLoadError, build_index, current_version, load_index
from .retrieval import Retriever
from .text import TOOL_FILES, TextTools, load_text_tools


@dataclass(frozen=True)
class Snapshot:
    index: Index
    retriever: Retriever


class Engine:
    """Loads and serves answers from the live index of ``settings['data_dir']``."""

    def __init__(
        self,
        settings: dict[str, Any],
        embedder: Embedder | None = None,
        tools: TextTools | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.data_dir = Path(settings["data_dir"])
        self.corpus_dir = corpus_dir(settings)
        self.progress = progress
        # Tools made here follow edits of the glossary and synonyms (a reindex must tokenise
        # the index and the questions alike); tools passed in are the caller's to keep.
        self._own_tools = tools is None
        self._tools_digest = self._tools_files_digest()
        self.tools = tools or load_text_tools(self.corpus_dir)
        if embedder is None:
            from .embedding import load_embedder

            embedder = load_embedder(settings, progress=progress)
        self.embedder = embedder
        self._snapshot: Snapshot | None = None
        self.error: str | None = None
        self._reload_lock = threading.Lock()
        self._last_check = 0.0
        self._loading = False
        self.reload()

    # index lifecycle ------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """The live snapshot, checking (at most every ``reload_interval`` s) for a new build."""
        self._maybe_reload()
        snap = self._snapshot
        if snap is None:
            raise IndexLoadError(self.error or f"no index loaded from {self.data_dir}")
        return snap

    def reload(self) -> bool:
        """Load the build ``CURRENT`` names if it is not the one being served; True if swapped."""
        with self._reload_lock:
            version = current_version(self.data_dir)
            if self._snapshot is not None and self._snapshot.index.version == version:
                return False
            try:
                index = load_index(self.data_dir, expected_model=self.embedder.model_id)
                snap = Snapshot(index, Retriever(index, self.embedder, self._current_tools(), self.settings))
            except Exception as exc:  # noqa: BLE001 - whatever breaks a load, the old build serves on
                # Keep serving the old build if there is one; report the problem.
                self.error = str(exc) if isinstance(exc, IndexLoadError) else f"{type(exc).__name__}: {exc}"
                return False
            self._snapshot = snap
            self.error = None
            return True

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        interval = float(self.settings.get("reload_interval", 1.0))
        if self._loading or now - self._last_check < interval:
            return
        self._last_check = now
        version = current_version(self.data_dir)
        current = self._snapshot.index.version if self._snapshot else None
        if version is None or version == current:
            return
        if self._snapshot is None:
            self.reload()  # nothing to serve meanwhile: load now
            return
        self._loading = True

        def work() -> None:
            try:
                self.reload()
            finally:
                self._loading = False

        threading.Thread(target=work, name="restake-qa-reload", daemon=True).start()

    def build(self, *, force: bool = False, wait: float = 0.0, progress=None) -> BuildReport:
        """Build from the corpus folder and swap the new index in."""
        report = build_index(
            self.corpus_dir, self.data_dir, self.embedder, self.settings, tools=self._current_tools(strict=True),
            force=force, wait=wait, progress=progress or self.progress,
        )
        self.reload()
        return report

    def _tools_files_digest(self) -> str:
        digest = hashlib.sha256()
        for name in TOOL_FILES:
            try:
                digest.update(name.encode() + b"\0" + (self.corpus_dir / name).read_bytes())
            except OSError:
                pass
        return digest.hexdigest()

    def _current_tools(self, strict: bool = False) -> TextTools:
        """The text tools for the corpus's glossary and synonyms as they are now, remade only
        when those files changed. A file that does not load fails a build (``strict``) and
        otherwise leaves the tools as they were."""
        if self._own_tools:
            digest = self._tools_files_digest()
            if digest != self._tools_digest:
                try:
                    self.tools = load_text_tools(self.corpus_dir)
                except ValueError:
                    if strict:
                        raise
                    return self.tools
                self._tools_digest = digest
        return self.tools

    # answers --------------------------------------------------------------------------
    def answer(self, question: str, history: list[dict[str, str]] | None = None, top_k: int | None = None) -> tuple[Answer, str]:
        """The answer and the version of the index it came from."""
        snap = self.snapshot
        return compose(snap.retriever, question, history=history, top_k=top_k), snap.index.version

    def health(self) -> dict[str, Any]:
        snap = self._snapshot
        return {
            "status": "ok" if snap else "error",
            "index_version": snap.index.version if snap else None,
            "model": self.embedder.model_id,
            "model_source": getattr(self.embedder, "source", None),
            "chunks": len(snap.index.chunks) if snap else 0,
            "sections": len(snap.index.sections) if snap else 0,
            "error": self.error,
        }

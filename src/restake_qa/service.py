"""The question-answering engine one process shares, and the reindex jobs it runs.

The model and the jieba/OpenCC tools load once. The index is held as one immutable
``(Index, Retriever)`` snapshot: a request takes the snapshot once and uses it throughout, so
it never mixes two builds. :meth:`Engine.check_for_new_build` (called by the web layer before
each request, at most every ``reload_interval`` seconds) notices a newly published build
(``CURRENT`` changed, by ``restake-qa build``, ``--rollback`` or a reindex job), loads it in a
background thread and swaps it in by one reference assignment; requests are never blocked or
failed by a reload, and a build that fails to load leaves the old one serving (the error
shows in :meth:`Engine.health`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .answer import Answer, compose
from .build import BuildReport, build_index
from .config import Settings
from .embedding import Embedder
from .errors import BuildCancelledError, IndexLoadError, RestakeQAError
from .fsutil import files_digest
from .index import Index, current_version, load_index, search_with_one_thread
from .memory import release_freed_memory
from .retrieval import Retriever
from .text import TextTools, load_text_tools, tool_files

Progress = Callable[[str], None]
log = logging.getLogger("restake_qa")


@dataclass(frozen=True)
class Snapshot:
    index: Index
    retriever: Retriever


class Engine:
    """Loads and serves answers from the live index of ``settings.data_dir``."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        tools: TextTools | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_path
        self.corpus_dir = settings.corpus_path
        self.progress = progress
        # Tools made here follow edits of the glossary and synonyms (a reindex must tokenise
        # the index and the questions alike); tools passed in are the caller's to keep.
        self._own_tools = tools is None
        self._tools_digest = files_digest(tool_files(self.corpus_dir))
        self.tools = tools or load_text_tools(self.corpus_dir)
        if embedder is None:
            from .embedding import load_embedder

            embedder = load_embedder(settings, progress=progress)
        self.embedder = embedder
        search_with_one_thread()
        self._snapshot: Snapshot | None = None
        self.error: str | None = None
        self._reload_lock = threading.Lock()
        self._last_check = 0.0
        self._loading = False
        self.reload()

    # index lifecycle ------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The live snapshot (no side effects); :class:`IndexLoadError` when none is loaded."""
        snap = self._snapshot
        if snap is None:
            raise IndexLoadError(self.error or f"no index loaded from {self.data_dir}")
        return snap

    def reload(self) -> bool:
        """Load the build ``CURRENT`` names if it is not the one being served; True if swapped."""
        with self._reload_lock:
            version = current_version(self.data_dir)
            if self._snapshot is not None and self._snapshot.index.version == version:
                self.error = None  # what failed is no longer what CURRENT names
                return False
            try:
                index = load_index(self.data_dir, expected_model=self.embedder.model_id)
                snap = Snapshot(index, Retriever(index, self.embedder, self._current_tools(), self.settings))
            except (RestakeQAError, OSError) as exc:
                # Keep serving the old build if there is one; report the problem.
                self.error = str(exc)
                return False
            old, self._snapshot = self._snapshot, snap
            self.error = None
        if old is not None:
            del old, snap  # requests still using it hold their own reference
            release_freed_memory()  # the old build's pages go back to the system (memory.py)
        return True

    def check_for_new_build(self) -> None:
        """Notice a newly published build (at most every ``reload_interval`` seconds) and load
        it: in the background while an old build serves, at once when nothing does."""
        now = time.monotonic()
        if self._loading or now - self._last_check < self.settings.reload_interval:
            return
        self._last_check = now
        version = current_version(self.data_dir)
        current = self._snapshot.index.version if self._snapshot else None
        if version is not None and version == current:
            self.error = None  # e.g. rolled back from a build that failed to load: fixed
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

    def build(
        self,
        *,
        force: bool = False,
        wait: float = 0.0,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> BuildReport:
        """Build from the corpus folder and swap the new index in (``should_stop`` cancels)."""
        report = build_index(
            self.corpus_dir,
            self.data_dir,
            self.embedder,
            self.settings,
            tools=self._current_tools(strict=True),
            force=force,
            wait=wait,
            progress=progress or self.progress,
            should_stop=should_stop,
        )
        self.reload()
        return report

    def _current_tools(self, strict: bool = False) -> TextTools:
        """The text tools for the corpus's glossary and synonyms as they are now, remade only
        when those files changed. A file that does not load fails a build (``strict``) and
        otherwise leaves the tools as they were."""
        if self._own_tools:
            digest = files_digest(tool_files(self.corpus_dir))
            if digest != self._tools_digest:
                try:
                    self.tools = load_text_tools(self.corpus_dir)
                except RestakeQAError:
                    if strict:
                        raise
                    return self.tools
                self._tools_digest = digest
        return self.tools

    # answers --------------------------------------------------------------------------
    def answer(
        self,
        question: str,
        history: list[dict[str, str]] | None = None,
        top_k: int | None = None,
        language: str | None = None,
    ) -> tuple[Answer, str]:
        """The answer and the version of the index it came from (``language``: the asker's
        interface language, see :func:`~restake_qa.answer.compose.compose`)."""
        snap = self.snapshot()
        answer = compose(snap.retriever, question, history=history, top_k=top_k, language=language)
        return answer, snap.index.version

    def warm_up(self) -> None:
        """Answer a few questions: the first calls pay one-off costs (model buffers per input
        shape, jieba's dictionary, OpenCC) that users should not see."""
        for question in ("再質押是什麼？", "What are the risks of restaking and how do AVSs slash stakers?", "风险"):
            self.answer(question)

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


# reindex jobs -----------------------------------------------------------------------------
#: Progress lines kept per reindex job (the first ones and the latest ones), and jobs kept.
JOB_PROGRESS_LINES = 200
JOBS_KEPT = 20


class ReindexJobs:
    """Rebuilds started over the API, each in a background thread, one at a time; their
    status, progress lines and change reports are kept (the last :data:`JOBS_KEPT`)."""

    def __init__(self) -> None:
        self._jobs: dict[str, dict[str, Any]] = {}
        self._stops: dict[str, threading.Event] = {}
        # One lock for every job's fields: a status request copies a job while its build
        # thread appends to it, and must see a consistent job (status, report and finished_at).
        self._lock = threading.Lock()

    def running(self) -> dict[str, Any] | None:
        with self._lock:
            return next((dict(j) for j in self._jobs.values() if j["status"] == "running"), None)

    def latest(self) -> dict[str, Any] | None:
        """A copy of the most recently started job, or None."""
        with self._lock:
            job = next(reversed(self._jobs.values()), None)
            return None if job is None else {**job, "progress": list(job["progress"])}

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Ask job ``job_id`` to stop (its build stops at its next step); a copy of it, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job["status"] == "running":
                self._stops[job_id].set()
                job["cancel_requested"] = True
            return {**job, "progress": list(job["progress"])}

    def start(self, engine: Engine, reason: str = "api", echo: Progress | None = None) -> dict[str, Any] | None:
        """Start a rebuild of ``engine``'s corpus (its progress also to ``echo``); None if one
        is already running."""
        with self._lock:
            if any(j["status"] == "running" for j in self._jobs.values()):
                return None
            job: dict[str, Any] = {
                "id": uuid.uuid4().hex[:12],
                "status": "running",
                "progress": [],
                "report": None,
                "error": None,
                "started_at": time.time(),
                "finished_at": None,
                "reason": reason,
            }
            finished = [k for k, j in self._jobs.items() if j["status"] != "running"]
            for key in finished[: max(len(self._jobs) + 1 - JOBS_KEPT, 0)]:
                del self._jobs[key]
                self._stops.pop(key, None)
            self._jobs[job["id"]] = job
            stop = self._stops[job["id"]] = threading.Event()

        def run() -> None:
            outcome: dict[str, Any]
            try:
                # A CLI build may hold the lock: wait for it rather than fail.
                report = engine.build(wait=600, progress=lambda m: self._say(job, m, echo), should_stop=stop.is_set)
                outcome = {"report": report.to_dict(), "status": "done"}
            except BuildCancelledError as exc:
                outcome = {"error": str(exc), "status": "cancelled"}
            except (RestakeQAError, OSError) as exc:
                outcome = {"error": str(exc), "status": "failed"}
            except Exception as exc:  # a bug: the job must still end, and say so
                log.exception("reindex job %s failed unexpectedly", job["id"])
                outcome = {
                    "error": f"unexpected error ({type(exc).__name__}: {exc}); see the server log",
                    "status": "failed",
                }
            log.info("reindex job %s (%s) %s", job["id"], reason, outcome["status"])
            if echo is not None:  # said before the status changes, so a poller finds it said
                echo(
                    f"reindex job {job['id']} {outcome['status']}"
                    + (f": {outcome['error']}" if "error" in outcome else "")
                )
            with self._lock:
                job.update(finished_at=time.time(), **outcome)
            release_freed_memory()  # the build's temporaries, whatever the outcome

        threading.Thread(target=run, name=f"reindex-{job['id']}", daemon=True).start()
        return dict(job)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """A consistent copy of job ``job_id``, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else {**job, "progress": list(job["progress"])}

    def _say(self, job: dict[str, Any], message: str, echo: Progress | None = None) -> None:
        if echo is not None:
            echo(message)
        with self._lock:
            lines = job["progress"]
            lines.append(message)
            if len(lines) > JOB_PROGRESS_LINES:  # keep the start (what is built) and the latest
                del lines[20 : len(lines) - JOB_PROGRESS_LINES + 20]

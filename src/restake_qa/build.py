"""Building the index: parse, chunk, embed what changed, write, validate, publish — safely.

A build is written into a staging folder, validated (it loads, counts and dimensions agree
with the manifest, smoke queries through the retriever find their own sections), renamed
into ``builds/`` and only then made live by replacing ``CURRENT``. The previous build is
kept for :func:`rollback`.

Every step is safe to kill (SIGKILL included): until ``CURRENT`` is replaced the live build
is untouched, and ``CURRENT`` is replaced by one rename. What a killed build leaves behind
is harmless and cleaned by the next one: a staging folder, a ``.CURRENT.*.tmp`` file, a
half-deleted ``.trash-*`` folder, or a complete build renamed into ``builds/`` but never
published (never loaded, since only ``CURRENT`` names what is live; pruned like any old
build). Embeddings are committed to the cache batch by batch, so a killed build's work is
reused by the next one; SQLite's journal rolls back a batch cut short.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .build_embed import CACHE_COMMIT_EVERY, embed_with_cache
from .chunking import Chunk, ChunkerSettings, chunk_section, section_sentences
from .config import Settings
from .corpus import Section, corpus_hash, load_corpus_report, section_key
from .embedding import Embedder, precision_of
from .errors import BuildCancelledError, BuildError, BuildLockedError, IndexLoadError, RestakeQAError
from .fsutil import LockBusy, file_lock, fsync_dir
from .index import (
    FORMAT_VERSION,
    BuildContent,
    builds_dir,
    current_version,
    live_manifest,
    load_index_folder,
    publish,
    sections_json,
    write_build,
)
from .sources import read_sources, write_sources
from .text import STOPWORDS, TextTools, load_text_tools, vocabulary
from .validation import validate_build as _validate

KEEP_BUILDS = 3

Progress = Callable[[str], None]
StopCheck = Callable[[], bool]
__all__ = ["CACHE_COMMIT_EVERY", "BuildReport", "build_index", "build_lock", "rollback"]


@dataclass(frozen=True)
class BuildReport:
    version: str
    up_to_date: bool = False
    sections: int = 0
    chunks: int = 0
    sections_added: tuple[str, ...] = ()
    sections_changed: tuple[str, ...] = ()
    sections_removed: tuple[str, ...] = ()
    chunks_added: int = 0
    chunks_removed: int = 0
    embedded: int = 0
    reused: int = 0
    repaired: int = 0
    seconds: float = 0.0
    previous: str | None = None
    embedding: dict[str, Any] | None = None  # what embedding took (build_embed.EmbedStats)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, limit: int = 20) -> str:
        """What the build did, in a few lines: counts, then the sections added, changed, removed."""
        if self.up_to_date:
            return f"index {self.version} is up to date; nothing to do"
        lines = [
            f"built {self.version}: {self.sections} sections, {self.chunks} chunks "
            f"(sections +{len(self.sections_added)} ~{len(self.sections_changed)} "
            f"-{len(self.sections_removed)}; chunks +{self.chunks_added} -{self.chunks_removed}; "
            f"embedded {self.embedded}, reused {self.reused}"
            + (f", repaired {self.repaired} corrupt cache entries" if self.repaired else "")
            + f") in {self.seconds:.1f} s"
        ]
        for label, keys in (
            ("added", self.sections_added),
            ("changed", self.sections_changed),
            ("removed", self.sections_removed),
        ):
            for key in keys[:limit]:
                lines.append(f"  {label:<8}{key}")
            if len(keys) > limit:
                lines.append(f"  {label:<8}… and {len(keys) - limit} more")
        if self.previous:
            lines.append(f"previous build {self.previous} is kept; `restake-qa build --rollback` restores it")
        return "\n".join(lines)


@contextmanager
def build_lock(
    data_dir: Path, wait: float = 0.0, progress: Progress | None = None, should_stop: StopCheck | None = None
) -> Iterator[None]:
    """Hold the data folder's build lock; wait up to ``wait`` seconds (in short polls, so that
    ``should_stop`` can cancel the wait), then refuse."""
    told = False

    def busy(holder: str) -> None:
        nonlocal told
        if progress and not told:
            progress(f"waiting up to {wait:.0f} s for another build to finish ({holder})")
        told = True

    deadline = time.monotonic() + wait
    while True:
        _check(should_stop)
        try:
            with file_lock(data_dir / "build.lock", wait=max(0.0, min(1.0, deadline - time.monotonic())), on_busy=busy):
                yield
                return
        except LockBusy as exc:
            if time.monotonic() < deadline:
                continue
            raise BuildLockedError(
                f"another build is running in {data_dir} ({exc.holder}); wait for it to finish or pass --wait SECONDS"
            ) from None


def _check(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        raise BuildCancelledError("the build was cancelled; nothing was published and the live index serves on")


@contextmanager
def _disk_errors(data_dir: Path) -> Iterator[None]:
    """A full disk, a read-only folder or any other OS error while writing → one
    :class:`BuildError` line (what was live stays live; the cache rolls back its batch)."""
    try:
        yield
    except RestakeQAError:
        raise
    except (OSError, sqlite3.Error) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
        raise BuildError(
            f"cannot write the index in {data_dir}: {reason}; nothing was published and the live index "
            "is unchanged; free some space or make the folder writable, then build again"
        ) from None


def chunker_settings(settings: Settings) -> ChunkerSettings:
    return ChunkerSettings(target=settings.chunk_target_tokens, maximum=settings.chunk_max_tokens)


def build_index(
    corpus_dir: Path,
    data_dir: Path,
    embedder: Embedder,
    settings: Settings,
    *,
    tools: TextTools | None = None,
    force: bool = False,
    wait: float = 0.0,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> BuildReport:
    """Build the index of ``corpus_dir`` into ``data_dir`` and publish it atomically.

    Nothing is written until the corpus has parsed; a failed, cancelled (``should_stop``
    returned True at a step) or killed build leaves the live index as it was; an OS error
    (disk full, read-only folder) is one :class:`BuildError`. Returns what changed.
    """
    say = progress or (lambda message: None)
    # Parse first: bad input fails before the lock, the cache or any folder is touched.
    content_hash = corpus_hash(corpus_dir)
    parsed = load_corpus_report(corpus_dir, settings.max_page_bytes)
    for warning in parsed.warnings:  # what the pages hold that is not indexed: file:line: message
        say(str(warning))
    sources = read_sources(corpus_dir, content_hash)  # kept in the build, for a rollback of the content
    with _disk_errors(data_dir), build_lock(data_dir, wait=wait, progress=say, should_stop=should_stop):
        return _build_locked(
            corpus_dir,
            data_dir,
            embedder,
            settings,
            content_hash,
            parsed.sections,
            sources,
            tools,
            force,
            say,
            should_stop,
        )


def _build_locked(
    corpus_dir: Path,
    data_dir: Path,
    embedder: Embedder,
    settings: Settings,
    content_hash: str,
    sections: list[Section],
    sources: dict[str, bytes] | None,
    tools: TextTools | None,
    force: bool,
    say: Progress,
    should_stop: StopCheck | None,
) -> BuildReport:
    started = time.monotonic()
    chunker = chunker_settings(settings)
    _clean_leftovers(data_dir, say)
    live = live_manifest(data_dir)
    tools = (tools or load_text_tools(corpus_dir)).unremembered()  # a build's texts are met once
    probe = tokenizer_probe(tools, sections)
    fingerprint = {
        "corpus_sha256": content_hash,
        "model": embedder.model_id,
        "precision": precision_of(embedder),
        "chunker": asdict(chunker),
        "format": FORMAT_VERSION,
        "package": __version__,  # tokenisation and chunking may change with the code
        # what the parser made of the pages: a parser change rebuilds though no page changed
        "sections": hashlib.sha256(sections_json(sections)).hexdigest(),
        "tokenizer": probe,
    }
    if live and not force and _fingerprint(live) == fingerprint:
        return BuildReport(
            version=live["version"],
            up_to_date=True,
            sections=live["counts"]["sections"],
            chunks=live["counts"]["chunks"],
            previous=live.get("previous"),
        )
    say(f"parsed {len(sections)} sections from {corpus_dir}")
    chunks: list[Chunk] = []
    for section in sections:  # section by section, so that a cancel is noticed soon
        _check(should_stop)
        chunks += chunk_section(section, tools, chunker)
    say(f"cut {len(chunks)} chunks (target {chunker.target}, max {chunker.maximum} jieba tokens)")
    sentences = [x for s in sections for x in section_sentences(s)]
    # sections' titles are embedded as questions (they are questions: 「我們為什麼需要再質押？」),
    # to be compared with a reader's question
    all_vectors, stats = embed_with_cache(
        [c.embedding_text for c in chunks]
        + [x.text for x in sentences]
        + [s.english_name for s in sections]
        + [s.title for s in sections],
        embedder,
        data_dir / "cache" / "embeddings.sqlite",
        say,
        should_stop=lambda: _check(should_stop),
        queries=len(sections),
    )
    n_chunks, n_sentences, n_sections = len(chunks), len(sentences), len(sections)
    tokens = []
    for i, c in enumerate(chunks):
        if i % 256 == 0:
            _check(should_stop)
        tokens.append(tools.lexical_tokens(c.display_text + " " + c.title))
    content = BuildContent(
        sections=sections,
        chunks=chunks,
        tokens=tokens,
        vectors=all_vectors[:n_chunks],
        sentences=sentences,
        sentence_vectors=all_vectors[n_chunks : n_chunks + n_sentences],
        heading_vectors=all_vectors[n_chunks + n_sentences : n_chunks + n_sentences + n_sections],
        title_vectors=all_vectors[n_chunks + n_sentences + n_sections :],
    )
    changes = _diff(_live_chunk_index(data_dir, live), sections, chunks)
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + content_hash[:8]
    previous = live["version"] if live else None
    staging = builds_dir(data_dir) / f".staging-{version}-{os.getpid()}"
    _check(should_stop)
    staging.mkdir(parents=True)
    try:
        say(f"writing build {version}")
        if sources is None:
            say("the corpus changed while it was read: this build keeps no copy of its sources")
        else:
            write_sources(staging, sources)
        _write_build(
            staging,
            version,
            content,
            chunker=chunker,
            corpus_sha256=content_hash,
            previous=previous,
            changes=changes,
            tokenizer=probe,
            model={
                "id": embedder.model_id,
                "source": embedder.source,
                "dimension": embedder.dimension,
                "precision": precision_of(embedder),
                "prompts": {"query": "query: ", "passage": "passage: "},
            },
        )
        _check(should_stop)
        say("validating: load, counts, dimensions, smoke queries")
        _validate(staging, embedder, tools, settings)
        _check(should_stop)  # the last moment a cancel is honoured: next, the build goes live
        os.replace(staging, builds_dir(data_dir) / version)
    except BaseException:
        # Ctrl+C or an error: nothing was published; don't wait for the next build to tidy.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(builds_dir(data_dir))
    publish(data_dir, version)
    say(f"published {version}" + (f" (previous {previous} kept for --rollback)" if previous else ""))
    _prune(data_dir, keep={version, previous or ""})
    return BuildReport(
        version=version,
        sections=len(sections),
        chunks=len(chunks),
        embedded=stats.embedded,
        reused=stats.texts - stats.embedded,
        repaired=stats.repaired,
        seconds=time.monotonic() - started,
        previous=previous,
        embedding=stats.to_dict(),
        **changes,
    )


def _write_build(folder: Path, version: str, content: BuildContent, **kwargs: Any) -> None:
    try:
        write_build(folder, version, content, **kwargs)
    except RuntimeError as exc:  # FAISS reports a failed write (disk full …) as RuntimeError
        if isinstance(exc, RestakeQAError):
            raise
        raise OSError(f"the vector index could not be written ({str(exc).strip().splitlines()[-1][:200]})") from None


def _fingerprint(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "corpus_sha256": manifest.get("corpus_sha256"),
        "model": manifest.get("model", {}).get("id"),
        "precision": manifest.get("model", {}).get("precision", "fp32"),
        "chunker": manifest.get("chunker"),
        "format": manifest.get("format_version"),
        "package": manifest.get("package_version"),
        "sections": manifest.get("files", {}).get("sections.json"),
        "tokenizer": manifest.get("tokenizer"),
    }


#: Words that show how the lexical tokens are made: English endings, abbreviations, Chinese words
#: of the glossary and not, both scripts, full-width letters.
_PROBE = "Restakers' riskier risks: LSTs, AVSs, slashed operators 再質押者的風險 营运者 罰沒 ＥＴＨ 2023 年"


def tokenizer_probe(tools: TextTools, sections: list[Section]) -> str:
    """A digest of the lexical tokens of a fixed text, the stop words and every section title: a
    change of tokenisation (a new stemmer, jieba's dictionary or vocabulary, the glossary, a stop word) rebuilds
    the index."""
    texts = [_PROBE, *(s.title for s in sections)]
    probe = [sorted(STOPWORDS), list(vocabulary()), *(tools.lexical_tokens(t) for t in texts)]
    return hashlib.sha256(json.dumps(probe, ensure_ascii=False).encode("utf-8")).hexdigest()


def _live_chunk_index(data_dir: Path, live: dict[str, Any] | None) -> dict[str, set[str]]:
    """Section key → chunk ids of the build that was live before this one."""
    if not live:
        return {}
    out: dict[str, set[str]] = {}
    path = builds_dir(data_dir) / live["version"] / "chunks.jsonl"
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                out.setdefault(section_key(row["source"], row["anchor"]), set()).add(row["id"])
    except (OSError, ValueError):
        return {}
    return out


def _diff(live_chunks: dict[str, set[str]], sections: list[Section], chunks: list[Chunk]) -> dict[str, Any]:
    new: dict[str, set[str]] = {s.key: set() for s in sections}
    for c in chunks:
        new[c.section_key].add(c.id)
    old_ids = set().union(*live_chunks.values()) if live_chunks else set()
    new_ids = {c.id for c in chunks}
    return {
        "sections_added": tuple(k for k in new if k not in live_chunks) if live_chunks else tuple(new),
        "sections_changed": tuple(k for k in new if k in live_chunks and live_chunks[k] != new[k]),
        "sections_removed": tuple(k for k in live_chunks if k not in new),
        "chunks_added": len(new_ids - old_ids),
        "chunks_removed": len(old_ids - new_ids),
    }


def _clean_leftovers(data_dir: Path, say: Progress) -> None:
    """Remove what killed builds left: staging folders, half-pruned builds, CURRENT temp files."""
    folder = builds_dir(data_dir)
    leftovers = list(data_dir.glob(".CURRENT.*.tmp"))
    if folder.is_dir():
        leftovers += [p for p in folder.iterdir() if p.name.startswith((".staging-", ".trash-"))]
    for leftover in leftovers:
        say(f"removing {leftover.name}, left by an interrupted build")
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _prune(data_dir: Path, keep: set[str]) -> None:
    """Delete all but the KEEP_BUILDS newest builds, never one named in ``keep`` (the live
    build and the one before it). A build is first renamed out of sight, so a prune cut
    short never leaves a half-deleted folder among the builds."""
    folder = builds_dir(data_dir)
    builds = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in builds[:-KEEP_BUILDS]:
        if old.name in keep or old.name == current_version(data_dir):
            continue
        trash = folder / f".trash-{old.name}"
        try:
            os.replace(old, trash)
        except OSError:
            continue
        shutil.rmtree(trash, ignore_errors=True)


def rollback(
    data_dir: Path, expected_model: str | None = None, before_publish: Callable[[Path], None] | None = None
) -> str:
    """Make the build before the live one live again; returns its version. ``before_publish``
    is called with that build's folder under the lock, once it has loaded (e.g. to restore
    its sources into the corpus)."""
    with build_lock(data_dir):
        live = live_manifest(data_dir)
        if not live:
            raise IndexLoadError(f"no live index in {data_dir} to roll back from")
        previous = live.get("previous")
        if not previous or not (builds_dir(data_dir) / previous).is_dir():
            raise IndexLoadError(f"index {live['version']} has no earlier build kept to roll back to")
        load_index_folder(builds_dir(data_dir) / previous, expected_model=expected_model)
        if before_publish is not None:
            before_publish(builds_dir(data_dir) / previous)
        publish(data_dir, previous)
        return str(previous)

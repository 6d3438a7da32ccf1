"""Build, publish and load the index folder.

Layout of the data folder::

    <data_dir>/
      CURRENT                 name of the live build (switched with os.replace)
      build.lock              held (flock) by the one build that may run
      cache/embeddings.sqlite embeddings by (model id, sha256 of the embedded text)
      builds/<version>/       one complete build:
        manifest.json           written last; format, model, chunker, corpus hash, counts, files
        chunks.jsonl            row i = FAISS id i
        sections.json           the table of contents
        vectors.faiss           inner-product index over normalised embeddings
        lexical/                BM25 (bm25s) over the chunks' jieba tokens
      builds/.staging-*/      a build in progress; removed by the next build if left behind
      builds/.trash-*/        a build being pruned; removed by the next build if left behind

A build is written into a staging folder, validated (it loads, counts and dimensions agree
with the manifest, smoke queries through the retriever find their own sections), renamed
into ``builds/`` and only then made live by replacing ``CURRENT``. The previous build is
kept for ``rollback``.

Every step is safe to kill (SIGKILL included): until ``CURRENT`` is replaced the live build
is untouched, and ``CURRENT`` is replaced by one rename. What a killed build leaves behind
is harmless and cleaned by the next one: a staging folder, a ``.CURRENT.*.tmp`` file, a
half-deleted ``.trash-*`` folder, or a complete build renamed into ``builds/`` but never
published (never loaded, since only ``CURRENT`` names what is live; pruned like any old
build). Embeddings are committed to the cache batch by batch, so a killed build's work is
reused by the next one; SQLite's journal rolls back a batch cut short.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .chunking import Chunk, ChunkerSettings, Sentence, chunk_sections, section_sentences
from .corpus import Section, corpus_hash, load_corpus
from .embedding import Embedder
from .text import TextTools, load_text_tools

FORMAT_VERSION = 2
#: Up to this many chunks the index is exact (flat inner product); above it, HNSW. Measured
#: (bench/, 2 cores): exact search over 100k vectors takes ~6 ms with one thread (what
#: `serve` uses), builds in 0.1 s and needs no recall trade-off; HNSW answers in 0.7 ms but
#: takes ~45 s to build. Exact stays ≤ ~15 ms up to here.
EXACT_SEARCH_LIMIT = 200_000
#: HNSW parameters above the limit: recall@10 0.997–0.999 against exact search at 100k
#: (bench/); efConstruction 80 gave 0.985–0.998 depending on the queries.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128
KEEP_BUILDS = 3
#: Texts embedded (and committed to the cache) per step of a build.
CACHE_COMMIT_EVERY = 32
#: Chunks used as smoke queries when a build is validated.
SMOKE_QUERIES = 3

Progress = Callable[[str], None]


class IndexLoadError(RuntimeError):
    """The index folder is missing, incomplete or does not match; the message says the fix."""


class BuildLockedError(RuntimeError):
    """Another build holds the lock."""


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
        for label, keys in (("added", self.sections_added), ("changed", self.sections_changed),
                            ("removed", self.sections_removed)):
            for key in keys[:limit]:
                lines.append(f"  {label:<8}{key}")
            if len(keys) > limit:
                lines.append(f"  {label:<8}… and {len(keys) - limit} more")
        if self.previous:
            lines.append(f"previous build {self.previous} is kept; `restake-qa build --rollback` restores it")
        return "\n".join(lines)


@dataclass
class Index:
    """A loaded build: chunks, sections, the FAISS index and the BM25 index."""

    path: Path
    manifest: dict[str, Any]
    chunks: list[Chunk]
    chunk_tokens: list[list[str]]
    sections: list[Section]
    vectors: Any  # faiss.Index
    lexical: Any  # bm25s.BM25
    sentences: list[Sentence] = field(default_factory=list)
    sentence_vectors: np.ndarray | None = None
    heading_vectors: np.ndarray | None = None  # row i: sections[i].english_name
    section_by_key: dict[str, Section] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def model_id(self) -> str:
        return self.manifest["model"]["id"]

    @property
    def dimension(self) -> int:
        return int(self.manifest["model"]["dimension"])


# paths ------------------------------------------------------------------------------------
def builds_dir(data_dir: Path) -> Path:
    return data_dir / "builds"


def current_version(data_dir: Path) -> str | None:
    try:
        name = (data_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def current_path(data_dir: Path) -> Path:
    version = current_version(data_dir)
    if version is None:
        raise IndexLoadError(
            f"no index in {data_dir}; run `restake-qa build` (or set RESTAKE_QA_DATA_DIR to the "
            "folder that holds one)"
        )
    return builds_dir(data_dir) / version


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _publish(data_dir: Path, version: str) -> None:
    _write_atomic(data_dir / "CURRENT", (version + "\n").encode())


# lock -------------------------------------------------------------------------------------
@contextmanager
def build_lock(data_dir: Path, wait: float = 0.0, progress: Progress | None = None) -> Iterator[None]:
    """Hold the data folder's build lock; wait up to ``wait`` seconds, then refuse.

    The lock is an flock, so the kernel releases it when its holder dies, even by SIGKILL.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    fh = open(data_dir / "build.lock", "a+")
    deadline = time.monotonic() + wait
    told = False
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise BuildLockedError(
                        f"another build is running in {data_dir} ({holder}); wait for it to "
                        "finish or pass --wait SECONDS"
                    ) from None
                if progress and not told:
                    progress(f"waiting up to {wait:.0f} s for another build to finish ({holder})")
                    told = True
                time.sleep(0.1)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the flock


# embedding cache --------------------------------------------------------------------------
class EmbeddingCache:
    """Embeddings by (model id, sha256 of the text), in SQLite; corrupt rows are detected."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.repaired = 0
        self.reset: Path | None = None  # where a damaged cache file was moved
        try:
            self.db = self._open(path)
        except sqlite3.DatabaseError:
            # The cache only saves work: a damaged file is set aside (for inspection) and the
            # build re-embeds what it needs.
            self.reset = path.with_name(f"{path.name}.damaged-{int(time.time())}")
            for suffix in ("", "-journal", "-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.replace(f"{path}{suffix}", f"{self.reset}{suffix}")
            self.db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=30)
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, key TEXT, dim INTEGER, "
                "vector BLOB, checksum TEXT, PRIMARY KEY (model, key))"
            )
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get_many(self, model: str, dim: int, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            rows = self.db.execute(
                f"SELECT key, dim, vector, checksum FROM embeddings WHERE model = ? AND key IN "
                f"({','.join('?' * len(batch))})",
                [model, *batch],
            ).fetchall()
            for key, row_dim, blob, checksum in rows:
                ok = (
                    row_dim == dim
                    and isinstance(blob, bytes)
                    and len(blob) == dim * 4
                    and hashlib.sha256(blob).hexdigest() == checksum
                )
                if ok:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
                else:
                    self.repaired += 1
        return found

    def put_many(self, model: str, items: list[tuple[str, np.ndarray]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)",
                [
                    (model, key, int(vec.shape[0]), blob, hashlib.sha256(blob).hexdigest())
                    for key, vec in items
                    for blob in [np.ascontiguousarray(vec, dtype=np.float32).tobytes()]
                ],
            )

    def close(self) -> None:
        self.db.close()


# build ------------------------------------------------------------------------------------
def build_settings_of(settings: dict[str, Any]) -> ChunkerSettings:
    return ChunkerSettings(
        target=int(settings.get("chunk_target_tokens", ChunkerSettings.target)),
        maximum=int(settings.get("chunk_max_tokens", ChunkerSettings.maximum)),
    )


def make_vector_index(vectors: np.ndarray):
    """Exact inner product up to EXACT_SEARCH_LIMIT vectors, HNSW above it."""
    import faiss

    n, dim = vectors.shape
    if n <= EXACT_SEARCH_LIMIT:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_index(
    corpus_dir: Path,
    data_dir: Path,
    embedder: Embedder,
    settings: dict[str, Any],
    *,
    tools: TextTools | None = None,
    force: bool = False,
    wait: float = 0.0,
    progress: Progress | None = None,
) -> BuildReport:
    """Build the index of ``corpus_dir`` into ``data_dir`` and publish it atomically.

    Nothing is written until the corpus has parsed; a failed or killed build leaves the live
    index as it was. Returns what changed.
    """
    say = progress or (lambda message: None)
    started = time.monotonic()
    chunker = build_settings_of(settings)
    # Parse first: bad input fails before the lock, the cache or any folder is touched.
    content_hash = corpus_hash(corpus_dir)
    sections = load_corpus(corpus_dir)
    with build_lock(data_dir, wait=wait, progress=say):
        _clean_leftovers(data_dir, say)
        live = _live_manifest(data_dir)
        fingerprint = {
            "corpus_sha256": content_hash,
            "model": embedder.model_id,
            "chunker": asdict(chunker),
            "format": FORMAT_VERSION,
            "package": __version__,  # tokenisation and chunking may change with the code
        }
        if live and not force and _fingerprint(live) == fingerprint:
            return BuildReport(version=live["version"], up_to_date=True, sections=live["counts"]["sections"],
                               chunks=live["counts"]["chunks"], previous=live.get("previous"))
        say(f"parsed {len(sections)} sections from {corpus_dir}")
        tools = tools or load_text_tools(corpus_dir)
        chunks = chunk_sections(sections, tools, chunker)
        say(f"cut {len(chunks)} chunks (target {chunker.target}, max {chunker.maximum} jieba tokens)")
        sentences = [x for s in sections for x in section_sentences(s)]
        all_vectors, embedded, reused, repaired = _embed_with_cache(
            [c.embedding_text for c in chunks] + [x.text for x in sentences] + [s.english_name for s in sections],
            embedder, data_dir / "cache" / "embeddings.sqlite", say,
        )
        n_chunks, n_sentences = len(chunks), len(sentences)
        vectors = all_vectors[:n_chunks]
        sentence_vectors = all_vectors[n_chunks : n_chunks + n_sentences]
        heading_vectors = all_vectors[n_chunks + n_sentences :]
        tokens = [tools.lexical_tokens(c.display_text + " " + c.title) for c in chunks]
        changes = _diff(_live_chunk_index(data_dir, live), sections, chunks)
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + content_hash[:8]
        previous = live["version"] if live else None
        staging = builds_dir(data_dir) / f".staging-{version}-{os.getpid()}"
        staging.mkdir(parents=True)
        try:
            say(f"writing build {version}")
            _write_build(
                staging, version, sections, chunks, tokens, vectors, sentences, sentence_vectors,
                heading_vectors, embedder, chunker, fingerprint, previous=previous,
            )
            say("validating: load, counts, dimensions, smoke queries")
            _validate(staging, embedder, tools, settings)
            os.replace(staging, builds_dir(data_dir) / version)
        except BaseException:
            # Ctrl+C or an error: nothing was published; don't wait for the next build to tidy.
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(builds_dir(data_dir))
        _publish(data_dir, version)
        say(f"published {version}" + (f" (previous {previous} kept for --rollback)" if previous else ""))
        _prune(data_dir, keep={version, previous or ""})
        return BuildReport(
            version=version, sections=len(sections), chunks=len(chunks), embedded=embedded,
            reused=reused, repaired=repaired, seconds=time.monotonic() - started, previous=previous,
            **changes,
        )


def _fingerprint(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "corpus_sha256": manifest.get("corpus_sha256"),
        "model": manifest.get("model", {}).get("id"),
        "chunker": manifest.get("chunker"),
        "format": manifest.get("format_version"),
        "package": manifest.get("package_version"),
    }


def _live_manifest(data_dir: Path) -> dict[str, Any] | None:
    version = current_version(data_dir)
    if not version:
        return None
    try:
        return json.loads((builds_dir(data_dir) / version / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None  # a broken live build is rebuilt from scratch


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
                out.setdefault(f"{row['source']}#{row['anchor']}", set()).add(row["id"])
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


def _embed_with_cache(
    texts: list[str], embedder: Embedder, cache_path: Path, say: Progress
) -> tuple[np.ndarray, int, int, int]:
    """Embeddings of ``texts`` (passage prompt), from the cache where possible; returns the
    vectors and the counts embedded, reused and repaired (corrupt cache rows).

    New embeddings are committed every CACHE_COMMIT_EVERY texts, so a build that is killed
    midway has not wasted what it embedded."""
    cache = EmbeddingCache(cache_path)
    try:
        keys = [EmbeddingCache.key(t) for t in texts]
        found = cache.get_many(embedder.model_id, embedder.dimension, list(dict.fromkeys(keys)))
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        text_of = dict(zip(keys, texts))
        # similar lengths side by side: each model call pads less (+28% passages/s, bench/)
        todo.sort(key=lambda k: len(text_of[k]))
        if cache.reset:
            say(f"the embedding cache was damaged; it was moved to {cache.reset} and a new one started")
        if todo:
            say(f"embedding {len(todo)} new or changed texts ({len(keys) - len(todo)} from cache)")
            step = max(1, len(todo) // 20)
            shown = 0
            for start in range(0, len(todo), CACHE_COMMIT_EVERY):
                part = todo[start : start + CACHE_COMMIT_EVERY]

                def report(done: int, _total: int, offset: int = start) -> None:
                    nonlocal shown
                    done += offset
                    if done == len(todo) or done - shown >= step:
                        shown = done
                        say(f"  embedded {done}/{len(todo)}")

                fresh = embedder.embed_passages([text_of[k] for k in part], progress=report)
                if fresh.shape != (len(part), embedder.dimension):
                    raise IndexLoadError(
                        f"the model returned {fresh.shape} embeddings for {len(part)} texts of "
                        f"dimension {embedder.dimension}; nothing was published"
                    )
                cache.put_many(embedder.model_id, list(zip(part, fresh)))
                found.update(zip(part, fresh))
        else:
            say(f"all {len(keys)} embeddings come from the cache")
        if keys:
            vectors = np.vstack([found[k] for k in keys]).astype(np.float32)
        else:
            vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
        return vectors, len(todo), len(keys) - len(todo), cache.repaired
    finally:
        cache.close()


def _write_build(
    folder: Path,
    version: str,
    sections: list[Section],
    chunks: list[Chunk],
    tokens: list[list[str]],
    vectors: np.ndarray,
    sentences: list[Sentence],
    sentence_vectors: np.ndarray,
    heading_vectors: np.ndarray,
    embedder: Embedder,
    chunker: ChunkerSettings,
    fingerprint: dict[str, Any],
    previous: str | None,
) -> dict[str, Any]:
    import bm25s
    import faiss

    with open(folder / "chunks.jsonl", "w", encoding="utf-8") as fh:
        for chunk, toks in zip(chunks, tokens):
            row = asdict(chunk)
            row["lexical_tokens"] = toks
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (folder / "sections.json").write_text(
        json.dumps([asdict(s) for s in sections], ensure_ascii=False, indent=1), encoding="utf-8"
    )
    faiss.write_index(make_vector_index(vectors), str(folder / "vectors.faiss"))
    with open(folder / "sentences.jsonl", "w", encoding="utf-8") as fh:
        for sentence in sentences:
            fh.write(json.dumps(asdict(sentence), ensure_ascii=False) + "\n")
    np.save(folder / "sentences.npy", sentence_vectors.astype(np.float32))
    np.save(folder / "headings.npy", heading_vectors.astype(np.float32))
    lexical = bm25s.BM25()
    lexical.index(tokens if tokens else [[""]], show_progress=False)
    lexical.save(str(folder / "lexical"))
    files = {
        str(p.relative_to(folder)): _sha256_file(p)
        for p in sorted(folder.rglob("*")) if p.is_file()
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "version": version,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous": previous,
        "model": {
            "id": embedder.model_id,
            "source": embedder.source,
            "dimension": embedder.dimension,
            "prompts": {"query": "query: ", "passage": "passage: "},
        },
        "chunker": asdict(chunker),
        "lexical": {"library": "bm25s", "tokens": "jieba words of OpenCC tw2sp, lower-cased"},
        "vector_index": "flat-ip" if len(chunks) <= EXACT_SEARCH_LIMIT else "hnsw-ip",
        "corpus_sha256": fingerprint["corpus_sha256"],
        "counts": {"sections": len(sections), "chunks": len(chunks), "sentences": len(sentences)},
        "files": files,
    }
    _write_atomic(folder / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1).encode())
    return manifest


def _validate(folder: Path, embedder: Embedder, tools: TextTools, settings: dict[str, Any]) -> None:
    """Refuse to publish a build that does not load, disagrees with its manifest or cannot
    answer: a few chunks' own texts, asked as questions through the retriever, must come
    back with hits, and the dense search must find their sections (which also proves that
    FAISS row i is chunk i)."""
    from .retrieval import Retriever

    index = load_index_folder(folder, expected_model=embedder.model_id)
    if index.dimension != embedder.dimension:
        raise IndexLoadError(
            f"{folder}: manifest dimension {index.dimension} differs from the model's "
            f"{embedder.dimension}; the build was not published"
        )
    if not index.chunks:
        return
    retriever = Retriever(index, embedder, tools, settings)
    for chunk in _smoke_probes(index.chunks):
        query = chunk.display_text[:80]
        result = retriever.search(query, top_k=len(index.sections))
        if not result.hits:
            raise IndexLoadError(f"{folder}: the smoke query {query[:40]!r} found nothing; the build was not published")
        qvec = embedder.embed_queries([query])
        _, ids = index.vectors.search(qvec, min(5, len(index.chunks)))
        keys = {index.chunks[int(i)].section_key for i in ids[0] if i >= 0}
        if chunk.section_key not in keys:
            raise IndexLoadError(
                f"{folder}: the smoke query {query[:40]!r} did not find its own section "
                f"{chunk.section_key} among the nearest vectors; the vectors do not match the "
                "chunks, so the build was not published"
            )


def _smoke_probes(chunks: list[Chunk]) -> list[Chunk]:
    """Up to SMOKE_QUERIES chunks spread over the index whose text occurs nowhere else."""
    seen: dict[str, int] = {}
    for c in chunks:
        seen[c.display_text] = seen.get(c.display_text, 0) + 1
    unique = [c for c in chunks if seen[c.display_text] == 1 and len(c.display_text) >= 8]
    if not unique:
        return []
    picks = {0, len(unique) // 2, len(unique) - 1}
    return [unique[i] for i in sorted(picks)][:SMOKE_QUERIES]


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


def rollback(data_dir: Path, expected_model: str | None = None) -> str:
    """Make the build before the live one live again; returns its version."""
    with build_lock(data_dir):
        live = _live_manifest(data_dir)
        if not live:
            raise IndexLoadError(f"no live index in {data_dir} to roll back from")
        previous = live.get("previous")
        if not previous or not (builds_dir(data_dir) / previous).is_dir():
            raise IndexLoadError(f"index {live['version']} has no earlier build kept to roll back to")
        load_index_folder(builds_dir(data_dir) / previous, expected_model=expected_model)
        _publish(data_dir, previous)
        return previous


# load -------------------------------------------------------------------------------------
def load_index(data_dir: Path, expected_model: str | None = None) -> Index:
    """Load the live build of ``data_dir``; see :func:`load_index_folder` for the checks."""
    return load_index_folder(current_path(data_dir), expected_model=expected_model)


def load_index_folder(folder: Path, expected_model: str | None = None, verify: bool = True) -> Index:
    """Load one build folder, checking its manifest, files and model."""
    import bm25s
    import faiss

    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise IndexLoadError(f"{manifest_path} is missing: the build is incomplete; run `restake-qa build`")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise IndexLoadError(f"{manifest_path} is not valid JSON; run `restake-qa build --force`") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexLoadError(
            f"{folder} has index format {manifest.get('format_version')}, this restake-qa reads "
            f"format {FORMAT_VERSION}; run `restake-qa build --force`"
        )
    if expected_model and manifest["model"]["id"] != expected_model:
        raise IndexLoadError(
            f"{folder} was built with model {manifest['model']['id']!r} but the configured model is "
            f"{expected_model!r}; rebuild with `restake-qa build --force` or set RESTAKE_QA_MODEL "
            f"to {manifest['model']['id']!r}"
        )
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if not path.exists():
            raise IndexLoadError(f"{path} is missing; run `restake-qa build --force`")
        if verify and _sha256_file(path) != digest:
            raise IndexLoadError(f"{path} is corrupted (checksum mismatch); run `restake-qa build --force`")
    try:
        chunks, tokens = [], []
        with open(folder / "chunks.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                tokens.append(row.pop("lexical_tokens"))
                row["path"] = tuple(row["path"])
                chunks.append(Chunk(**row))
        sections = []
        for row in json.loads((folder / "sections.json").read_text("utf-8")):
            from .corpus import Link

            row["path"] = tuple(row["path"])
            row["lines"] = tuple(row["lines"])
            row["links"] = tuple(Link(**link) for link in row["links"])
            row["attachments"] = tuple(tuple(a) for a in row["attachments"])
            sections.append(Section(**row))
        with open(folder / "sentences.jsonl", encoding="utf-8") as fh:
            sentences = [Sentence(**json.loads(line)) for line in fh]
        sentence_vectors = np.load(folder / "sentences.npy")
        heading_vectors = np.load(folder / "headings.npy")
        vectors = faiss.read_index(str(folder / "vectors.faiss"))
        lexical = bm25s.BM25.load(str(folder / "lexical"))
    except Exception as exc:  # any unreadable file is the same problem to the user
        raise IndexLoadError(f"{folder} cannot be read ({type(exc).__name__}: {exc}); run `restake-qa build --force`") from None
    counts = manifest["counts"]
    dim = int(manifest["model"]["dimension"])
    if (
        len(chunks) != counts["chunks"] or vectors.ntotal != counts["chunks"] or vectors.d != dim
        or len(tokens) != len(chunks)
    ):
        raise IndexLoadError(
            f"{folder}: manifest says {counts['chunks']} chunks of dimension {dim}, files hold "
            f"{len(chunks)} chunks and {vectors.ntotal} vectors of dimension {vectors.d}; "
            "run `restake-qa build --force`"
        )
    if len(sections) != counts["sections"] or len(sentences) != counts.get("sentences", len(sentences)) \
            or sentence_vectors.shape != (len(sentences), dim) or heading_vectors.shape != (len(sections), dim):
        raise IndexLoadError(
            f"{folder}: manifest says {counts['sections']} sections and {counts.get('sentences')} "
            f"sentences of dimension {dim}, files hold {len(sections)} sections, {len(sentences)} "
            f"sentences and sentence vectors of shape {sentence_vectors.shape}; run `restake-qa build --force`"
        )
    keys = {s.key for s in sections}
    orphan = next((c for c in chunks if c.section_key not in keys), None)
    if orphan is not None:
        raise IndexLoadError(f"{folder}: chunk {orphan.id} names section {orphan.section_key}, which "
                             "sections.json lacks; run `restake-qa build --force`")
    return Index(
        path=folder, manifest=manifest, chunks=chunks, chunk_tokens=tokens, sections=sections,
        vectors=vectors, lexical=lexical, sentences=sentences, sentence_vectors=sentence_vectors,
        heading_vectors=heading_vectors, section_by_key={s.key: s for s in sections},
    )

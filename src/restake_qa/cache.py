"""Embeddings already computed, by (model id, sha256 of the embedded text), in SQLite.

Only unchanged text is reused; every row carries a checksum, so a torn or corrupt row is
detected (and re-embedded), and a damaged database file is set aside and a new one started.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .embedding import Embedder
from .errors import IndexLoadError

#: Texts embedded (and committed to the cache) per step of a build.
CACHE_COMMIT_EVERY = 32


class EmbeddingCache:
    """Embeddings by (model id, sha256 of the text), in SQLite; corrupt rows are detected."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.repaired = 0
        self.reset: Path | None = None  # where a damaged cache file was moved
        try:
            self.db = self._open(path)
        except sqlite3.OperationalError:
            raise  # cannot open or write it (disk full, read-only folder): not damage, keep the file
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


def embed_with_cache(
    texts: list[str],
    embedder: Embedder,
    cache_path: Path,
    say: Callable[[str], None],
    should_stop: Callable[[], None] | None = None,
    queries: int = 0,
) -> tuple[np.ndarray, int, int, int]:
    """Embeddings of ``texts`` — the passage prompt, but the last ``queries`` texts with the query
    prompt — from the cache where possible; returns the vectors and the counts embedded, reused
    and repaired (corrupt cache rows).

    New embeddings are committed every CACHE_COMMIT_EVERY texts, so a build that is killed
    midway has not wasted what it embedded."""
    cache = EmbeddingCache(cache_path)
    try:
        first_query = len(texts) - queries
        keys = [EmbeddingCache.key(t if i < first_query else "query:\0" + t) for i, t in enumerate(texts)]
        is_query = {k for i, k in enumerate(keys) if i >= first_query}
        found = cache.get_many(embedder.model_id, embedder.dimension, list(dict.fromkeys(keys)))
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        text_of = dict(zip(keys, texts))
        # similar lengths side by side: each model call pads less (+28% passages/s, bench/)
        todo.sort(key=lambda k: (k in is_query, len(text_of[k])))
        if cache.reset:
            say(f"the embedding cache was damaged; it was moved to {cache.reset} and a new one started")
        if todo:
            say(f"embedding {len(todo)} new or changed texts ({len(keys) - len(todo)} from cache)")
            step = max(1, len(todo) // 20)
            shown = 0
            for start in range(0, len(todo), CACHE_COMMIT_EVERY):
                if should_stop is not None:
                    should_stop()  # raises to cancel; what was embedded so far stays in the cache
                part = todo[start : start + CACHE_COMMIT_EVERY]

                def report(done: int, _total: int, offset: int = start) -> None:
                    nonlocal shown
                    done += offset
                    if done == len(todo) or done - shown >= step:
                        shown = done
                        say(f"  embedded {done}/{len(todo)}")

                passages = [k for k in part if k not in is_query]
                asked = [k for k in part if k in is_query]
                fresh = np.zeros((len(part), embedder.dimension), dtype=np.float32)
                if passages:
                    fresh[: len(passages)] = embedder.embed_passages([text_of[k] for k in passages], progress=report)
                if asked:
                    fresh[len(passages) :] = embedder.embed_queries([text_of[k] for k in asked])
                    report(len(part), len(part))
                part = passages + asked
                if fresh.shape != (len(part), embedder.dimension) or not np.isfinite(fresh).all():
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

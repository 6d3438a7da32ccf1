"""Embeddings already computed, by (model id, sha256 of the embedded text), in SQLite.

Only unchanged text is reused; every row carries a checksum, so a torn or corrupt row is
detected (and re-embedded), and a damaged database file is set aside and a new one started.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import numpy as np


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
            # A build commits every few dozen vectors: in WAL mode a commit costs an append,
            # not a journal and two fsyncs (1.8 against 9 ms here). A killed build loses
            # nothing it committed; a power cut may lose the last commits, which a cache can.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # The log is copied into the database every 128 pages (SQLite's default: 1,000, a
            # 4 MB log) and cut back to 1 MB: a build still fits on a nearly full disk once some
            # space is freed (tests/test_disk.py); a commit of 32 vectors costs ~0.3 ms more.
            db.execute("PRAGMA wal_autocheckpoint=128")
            db.execute("PRAGMA journal_size_limit=1048576")
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

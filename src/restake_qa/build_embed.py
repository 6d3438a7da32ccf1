"""A build's embeddings: each distinct text once, from the embedding cache where it can, the
rest in batches the embedder plans (similar token lengths, several at a time), committed to
the cache as they come.

Texts are keyed by the sha256 of what is embedded (a title embedded as a question has its own
key) and by the embedder's vector space (:func:`~restake_qa.embedding.vector_space`: the model
id, and ``@int8`` for the int8 variant), so identical texts are embedded once per build and
never again while they stay unchanged, and the two precisions never mix. New vectors are
committed at least every :data:`CACHE_COMMIT_EVERY` texts, and progress ("embedded N/M")
counts only committed texts, so a build that is killed has not wasted what it reported. A
build's cancel check runs before every batch; a cancelled build commits what it embedded first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache import EmbeddingCache
from .embedding import Embedder, vector_space
from .errors import IndexLoadError

#: Texts embedded (and committed to the cache) per step of a build, at most.
CACHE_COMMIT_EVERY = 32

Progress = Callable[[str], None]
#: Called before every batch; it raises to cancel the build (build.py passes its ``_check``).
CancelCheck = Callable[[], None]


@dataclass
class EmbedStats:
    """What embedding a build's texts took (``restake-qa build --json`` shows it)."""

    texts: int = 0  # texts the build needs vectors for
    distinct: int = 0  # of which distinct (same text, same prompt: embedded once)
    reused: int = 0  # distinct texts found in the cache
    embedded: int = 0  # distinct texts the model embedded
    repaired: int = 0  # corrupt cache rows found (and re-embedded)
    tokens: int = 0  # model tokens of the embedded texts (prompt and specials included)
    padded_tokens: int = 0  # rows × longest row over the model calls (tokens + padding)
    batches: int = 0  # model calls
    seconds: float = 0.0  # embedding and committing, wall clock

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        out["texts_per_s"] = round(self.embedded / self.seconds, 1) if self.seconds > 0 else None
        return out


def embed_with_cache(
    texts: Sequence[str],
    embedder: Embedder,
    cache_path: Path,
    say: Progress,
    should_stop: CancelCheck | None = None,
    queries: int = 0,
) -> tuple[np.ndarray, EmbedStats]:
    """Vectors of ``texts`` — the passage prompt, but the last ``queries`` texts with the query
    prompt — in order, and what it took. ``should_stop`` is called before every batch and
    raises to cancel; what was embedded until then is committed to the cache first."""
    started = time.monotonic()
    space = vector_space(embedder)
    cache = EmbeddingCache(cache_path)
    try:
        first_query = len(texts) - queries
        keys = [EmbeddingCache.key(t if i < first_query else "query:\0" + t) for i, t in enumerate(texts)]
        is_query = {k for i, k in enumerate(keys) if i >= first_query}
        distinct = list(dict.fromkeys(keys))
        found = cache.get_many(space, embedder.dimension, distinct)
        todo = [k for k in distinct if k not in found]
        text_of = dict(zip(keys, texts))
        stats = EmbedStats(texts=len(keys), distinct=len(distinct), reused=len(distinct) - len(todo))
        if cache.reset:
            say(f"the embedding cache was damaged; it was moved to {cache.reset} and a new one started")
        if todo:
            say(f"embedding {len(todo)} new or changed texts ({len(keys) - len(todo)} from cache or repeated)")
            committer = _Committer(cache, space, embedder.dimension, len(todo), say, found, should_stop)
            stream = getattr(embedder, "embed_batches", None)
            if stream is not None:
                counts: dict[str, Any] = {}
                committer.check()
                for positions, vectors in stream([text_of[k] for k in todo], [k in is_query for k in todo], counts):
                    committer.add([todo[i] for i in positions], vectors)
                    committer.check()  # before the generator makes the next batch
                committer.flush()
                for name in ("tokens", "padded_tokens", "batches"):
                    setattr(stats, name, int(counts.get(name, 0)))
            else:
                _embed_in_parts(todo, is_query, text_of, embedder, committer)
        else:
            say(f"all {len(keys)} embeddings come from the cache")
        stats.embedded, stats.repaired = len(todo), cache.repaired
        stats.seconds = time.monotonic() - started
        if keys:
            vectors = np.vstack([found[k] for k in keys]).astype(np.float32)
        else:
            vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
        return vectors, stats
    finally:
        cache.close()


def _embed_in_parts(
    todo: list[str],
    is_query: set[str],
    text_of: dict[str, str],
    embedder: Embedder,
    committer: _Committer,
) -> None:
    """For an embedder without :meth:`embed_batches`: CACHE_COMMIT_EVERY texts per step, the
    shorter first, each step committed."""
    todo = sorted(todo, key=lambda k: (k in is_query, len(text_of[k])))
    for start in range(0, len(todo), CACHE_COMMIT_EVERY):
        committer.check()
        part = todo[start : start + CACHE_COMMIT_EVERY]
        passages = [k for k in part if k not in is_query]
        asked = [k for k in part if k in is_query]
        fresh = np.zeros((len(part), embedder.dimension), dtype=np.float32)
        if passages:
            fresh[: len(passages)] = embedder.embed_passages([text_of[k] for k in passages])
        if asked:
            fresh[len(passages) :] = embedder.embed_queries([text_of[k] for k in asked])
        committer.add(passages + asked, fresh)
        committer.flush()


class _Committer:
    """Checks new vectors, commits them to the cache in steps (and into ``found``, the build's
    vectors by key), reports committed counts, and runs the build's cancel check."""

    def __init__(
        self,
        cache: EmbeddingCache,
        space: str,
        dimension: int,
        total: int,
        say: Progress,
        found: dict[str, np.ndarray],
        should_stop: CancelCheck | None = None,
    ) -> None:
        self.cache, self.space, self.dimension, self.total, self.say = cache, space, dimension, total, say
        self.found = found
        self.should_stop = should_stop
        self.pending: list[tuple[str, np.ndarray]] = []
        self.done = 0
        self.shown = 0
        self.step = max(1, total // 20)

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        if vectors.shape != (len(keys), self.dimension) or not np.isfinite(vectors).all():
            raise IndexLoadError(
                f"the model returned {vectors.shape} embeddings for {len(keys)} texts of "
                f"dimension {self.dimension}; nothing was published"
            )
        self.pending.extend(zip(keys, vectors))
        if len(self.pending) >= CACHE_COMMIT_EVERY:
            self.flush()

    def check(self) -> None:
        """Run the cancel check; if it raises, what is pending is committed first (a cancelled
        build has not wasted what it embedded)."""
        if self.should_stop is None:
            return
        try:
            self.should_stop()
        except BaseException:
            self.flush()
            raise

    def flush(self) -> None:
        if not self.pending:
            return
        self.cache.put_many(self.space, self.pending)
        self.found.update(self.pending)
        self.done += len(self.pending)
        self.pending = []
        if self.done == self.total or self.done - self.shown >= self.step:
            self.shown = self.done
            self.say(f"  embedded {self.done}/{self.total}")

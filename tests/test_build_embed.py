"""A build's embeddings (build_embed.py): every distinct text once, from the cache when it can,
each vector in its text's place however the embedder orders its batches, committed as it
comes (progress counts only what is committed), and the real model's batched build path
gives the vectors its query and passage calls give."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from restake_qa.build import build_index
from restake_qa.build_embed import CACHE_COMMIT_EVERY, embed_with_cache
from restake_qa.embedding import HashEmbedder
from restake_qa.index import load_index

from helpers import make_settings

PAGE = """---
title: 重複的段落
lang: zh-tw
---

## 第一節 {#first}

這一句在兩節裡都有。這一句只在第一節。

## 第二節 {#second}

這一句在兩節裡都有。這一句只在第二節。

## 第三節 {#third}

這一句在兩節裡都有。
"""


class Counting(HashEmbedder):
    """The hash embedder, remembering every text it embeds (and whether as a question)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, bool]] = []

    def embed_passages(self, texts, progress=None):
        self.seen += [(t, False) for t in texts]
        return super().embed_passages(texts, progress)

    def embed_queries(self, texts):
        self.seen += [(t, True) for t in texts]
        return np.array([self._one("Q:" + t) for t in texts], dtype=np.float32).reshape(-1, self.dimension)


class Streaming(Counting):
    """An embedder with its own batch plan: batches of three, the last batch first."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.fail_after = fail_after

    def embed_batches(
        self, texts: Sequence[str], queries: Sequence[bool], stats: dict | None = None
    ) -> Iterator[tuple[list[int], np.ndarray]]:
        batches = [list(range(i, min(i + 3, len(texts)))) for i in range(0, len(texts), 3)][::-1]
        for n, batch in enumerate(batches):
            if self.fail_after is not None and n == self.fail_after:
                raise RuntimeError("the model stopped")
            self.seen += [(texts[i], queries[i]) for i in batch]
            yield batch, np.array([self._one(("Q:" if queries[i] else "") + texts[i]) for i in batch], dtype=np.float32)
        if stats is not None:
            stats.update(tokens=7, padded_tokens=9, batches=len(batches))


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "dup.zh-tw.md").write_text(PAGE, encoding="utf-8")
    return folder


@pytest.mark.parametrize("embedder_class", [Counting, Streaming])
def test_identical_texts_are_embedded_once_and_each_vector_lands_in_its_place(tmp_path, corpus, embedder_class):
    settings = make_settings(tmp_path, corpus_dir=str(corpus))
    embedder = embedder_class()
    report = build_index(corpus, settings.data_path, embedder, settings)
    index = load_index(settings.data_path)
    shared = [s for s in index.sentences if s.text == "這一句在兩節裡都有。"]
    assert len(shared) == 3  # the same sentence in three sections…
    titles = {s.title for s in index.sections}
    built = [(t, q) for t, q in embedder.seen if not q or t in titles]  # not the validation's queries
    assert [t for t, _ in built if t == "這一句在兩節裡都有。"] == ["這一句在兩節裡都有。"]  # …embedded once
    assert len(built) == len(set(built)) == report.embedded
    stats = report.embedding
    assert stats["texts"] > stats["distinct"] == stats["embedded"] == report.embedded
    assert stats["texts"] == len(index.chunks) + len(index.sentences) + 2 * len(index.sections)
    # every row is its own text's vector, with the prompt it was embedded with
    hash_of = HashEmbedder()._one
    vectors = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    assert np.allclose(vectors, [hash_of(c.embedding_text) for c in index.chunks], atol=1e-6)
    assert np.allclose(index.sentence_vectors, [hash_of(s.text) for s in index.sentences], atol=1e-6)
    assert np.allclose(index.heading_vectors, [hash_of(s.english_name) for s in index.sections], atol=1e-6)
    assert np.allclose(index.title_vectors, [hash_of("Q:" + s.title) for s in index.sections], atol=1e-6)
    # a second build of the same pages embeds nothing, even when forced
    again = build_index(corpus, settings.data_path, embedder_class(), settings, force=True)
    assert again.embedded == 0 and again.reused == stats["texts"]


def test_a_title_and_a_passage_with_the_same_text_are_two_embeddings(tmp_path):
    embedder = Streaming()
    texts = ["再質押", "再質押", "再質押"]
    vectors, stats = embed_with_cache(texts, embedder, tmp_path / "cache.sqlite", lambda _m: None, queries=1)
    assert stats.texts == 3 and stats.distinct == stats.embedded == 2
    assert sorted(embedder.seen) == [("再質押", False), ("再質押", True)]
    assert np.allclose(vectors[0], vectors[1]) and not np.allclose(vectors[0], vectors[2])


def _cached(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
    finally:
        db.close()


def test_progress_counts_only_committed_vectors_and_a_failed_build_keeps_them(tmp_path):
    texts = [f"第 {i} 句，不同的內容。" for i in range(100)]
    cache = tmp_path / "cache.sqlite"
    messages: list[str] = []
    with pytest.raises(RuntimeError, match="the model stopped"):
        embed_with_cache(texts, Streaming(fail_after=20), cache, messages.append)
    reported = [int(m) for m in re.findall(r"embedded (\d+)/100", "\n".join(messages))]
    committed = _cached(cache)
    assert reported and max(reported) <= committed < 100
    assert committed >= 60 - CACHE_COMMIT_EVERY  # 20 batches of 3 were made; at most one step was lost
    embedder = Streaming()
    _, stats = embed_with_cache(texts, embedder, cache, lambda _m: None)
    assert stats.reused == committed and stats.embedded == len(embedder.seen) == 100 - committed


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("embedder_class", [Counting, Streaming])
def test_the_cancel_check_runs_before_every_batch_and_what_was_embedded_is_kept(tmp_path, embedder_class):
    texts = [f"第 {i} 句，不同的內容。" for i in range(100)]
    cache = tmp_path / "cache.sqlite"
    embedder = embedder_class()
    checks: list[int] = []

    def should_stop() -> None:  # build.py's check raises to cancel
        checks.append(len(embedder.seen))
        if len(checks) == 4:
            raise Cancelled

    with pytest.raises(Cancelled):
        embed_with_cache(texts, embedder, cache, lambda _m: None, should_stop=should_stop)
    assert checks[0] == 0 and len(set(checks)) == 4  # before the first batch, then between batches
    assert len(embedder.seen) == checks[-1] < 100  # nothing was embedded after the cancel
    assert _cached(cache) == len(embedder.seen)  # all of it committed (3 batches of 3: below a step)
    again = embedder_class()
    _, stats = embed_with_cache(texts, again, cache, lambda _m: None)
    assert stats.reused == len(embedder.seen) and len(again.seen) == 100 - len(embedder.seen)


@pytest.mark.slow
def test_the_models_build_path_gives_the_vectors_of_its_query_and_passage_calls(real_embedder):
    from restake_qa.corpus import load_corpus

    from helpers import CORPUS

    sections = load_corpus(CORPUS)
    texts = [p for s in sections for p in s.text.split("\n") if p.strip()] + [s.title for s in sections]
    queries = [False] * (len(texts) - len(sections)) + [True] * len(sections)
    stats: dict = {}
    got = np.zeros((len(texts), real_embedder.dimension), dtype=np.float32)
    seen: list[int] = []
    for positions, vectors in real_embedder.embed_batches(texts, queries, stats):
        seen += positions
        got[positions] = vectors
    assert sorted(seen) == list(range(len(texts)))  # each text exactly once
    passages = real_embedder.embed_passages(texts[: -len(sections)])
    asked = real_embedder.embed_queries(texts[-len(sections) :])
    cosines = np.sum(got * np.vstack([passages, asked]), axis=1)
    assert cosines.min() >= 0.99999
    assert stats["batches"] >= 2
    assert stats["padded_tokens"] >= stats["tokens"] > len(texts)

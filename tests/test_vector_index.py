"""The vector index type follows the corpus size: exact search, then HNSW with high recall."""

from __future__ import annotations

import faiss
import numpy as np

from restake_qa import index as ix


def clustered(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few hundred centres, like real embeddings (not uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((300, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dim)).astype(np.float32)
    noise *= 0.5 / np.linalg.norm(noise, axis=1, keepdims=True)
    out = centres[rng.integers(0, len(centres), n)] + noise
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_exact_up_to_the_limit_and_hnsw_above_it_with_recall(monkeypatch):
    vectors = clustered(6000)
    queries = clustered(200, seed=1)
    exact = ix.make_vector_index(vectors)
    assert isinstance(exact, faiss.IndexFlatIP) and exact.ntotal == 6000

    monkeypatch.setattr(ix, "EXACT_SEARCH_LIMIT", 5000)
    approximate = ix.make_vector_index(vectors)
    assert isinstance(approximate, faiss.IndexHNSWFlat) and approximate.ntotal == 6000
    _, truth = exact.search(queries, 10)
    _, got = approximate.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got)])
    assert recall >= 0.99, recall
    # the retriever reconstructs candidates by id, which both index types must support
    assert np.allclose(approximate.reconstruct(17), vectors[17], atol=1e-6)


def test_an_empty_corpus_still_makes_an_index():
    empty = ix.make_vector_index(np.zeros((0, 384), dtype=np.float32))
    assert empty.ntotal == 0 and empty.d == 384

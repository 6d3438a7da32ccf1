"""Turning benchmark results into the markdown report (targets, tables, ratios)."""

from __future__ import annotations

from typing import Any

from suites.today import today_markdown, today_targets

TARGETS = {
    "in-process answer p50 (ms)": 25,
    "HTTP p50 at concurrency 1 (ms)": 35,
    "HTTP p99 at concurrency 1 (ms)": 120,
    "answers/s at concurrency 16": 40,
    "rebuild after a one-section edit (s)": 3,
    "100k chunks: query p50 (ms)": 60,
}


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
        found["in-process answer p50 (ms)"] = next(r for r in results["stages"]["stages"] if r["stage"] == "total")[
            "product"
        ]["p50"]
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
    rows: list[dict[str, Any]] = []
    for name, value in found.items():
        target = TARGETS.get(name)
        if name == "errors at concurrency 16":
            rows.append({"target": name, "goal": "0", "measured": value, "met": value == 0})
            continue
        higher = name.startswith("answers/s")
        met = value >= target if higher else value <= target
        rows.append({"target": name, "goal": f"{'≥' if higher else '≤'} {target}", "measured": value, "met": met})
    return rows + today_targets(results.get("today", {}))


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# restake-qa benchmark — {meta['date']}",
        "",
        f"{meta['machine']}; {'quick smoke run' if meta['quick'] else 'full run'}; "
        f"commit {meta['commit']}; load average at start {meta['load_average']}.",
        "",
        "Ratios are *× vs baseline*: how many times better the product is than the plain baseline "
        "(paragraph chunks, dense only, torch, Flask development server); > 1 is better.",
        "",
    ]
    if results.get("targets"):
        lines += ["## Targets", ""]
        lines += _table(
            ["target", "goal", "measured", "met"],
            [[t["target"], t["goal"], t["measured"], "yes" if t["met"] else "**no**"] for t in results["targets"]],
        )
    if "stages" in results:
        r = results["stages"]
        lines += [f"## In-process latency per stage ({r['questions']} questions, query cache off)", ""]
        lines += _table(
            ["stage", "p50 ms", "p95 ms", "p99 ms", "baseline p50", "baseline p95", "× vs baseline"],
            [
                [
                    s["stage"],
                    s["product"].get("p50"),
                    s["product"].get("p95"),
                    s["product"].get("p99"),
                    s["baseline"].get("p50"),
                    s["baseline"].get("p95"),
                    _x(s["x_vs_baseline"]),
                ]
                for s in r["stages"]
            ],
        )
        lines += [r["note"] + ".", ""]
    if "http" in results:
        r = results["http"]
        lc = r["latency_c1"]
        lines += ["## Over HTTP (127.0.0.1)", "", "Sequential requests, one client:", ""]
        lines += _table(
            ["server", "p50 ms", "p95 ms", "p99 ms", "errors"],
            [
                [
                    "restake-qa serve (waitress)",
                    lc["product"]["p50"],
                    lc["product"]["p95"],
                    lc["product"]["p99"],
                    r["errors_c1"]["product"],
                ],
                [
                    "baseline (Flask dev server)",
                    lc["baseline"]["p50"],
                    lc["baseline"]["p95"],
                    lc["baseline"]["p99"],
                    r["errors_c1"]["baseline"],
                ],
            ],
        )
        lines += ["Throughput, bounded in requests and time:", ""]
        lines += _table(
            [
                "concurrency",
                "answers/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "baseline answers/s",
                "baseline p50",
                "baseline errors",
                "× vs baseline",
            ],
            [
                [
                    t["concurrency"],
                    t["product"]["answers_per_s"],
                    t["product"]["latency_ms"].get("p50"),
                    t["product"]["latency_ms"].get("p99"),
                    t["product"]["errors"],
                    t["baseline"]["answers_per_s"],
                    t["baseline"]["latency_ms"].get("p50"),
                    t["baseline"]["errors"],
                    _x(t["x_vs_baseline"]),
                ]
                for t in r["throughput"]
            ],
        )
        rss = r["rss_mb"]
        lines += [
            f"Server resident memory (MB), start → end: product {rss['product']['start']} → {rss['product']['end']}; "
            f"baseline {rss['baseline']['start']} → {rss['baseline']['end']}.",
            "",
        ]
    if "slow_clients" in results:
        r = results["slow_clients"]
        lines += ["## Slow and idle clients from one address", "", r["note"] + ".", ""]
        lines += _table(
            ["setup", "health answered", "failed", "p50 ms", "max ms"],
            [
                [x["setup"], x["answered"], x["failed"], x["health_ms"].get("p50"), x["health_ms"].get("max")]
                for x in r["rows"]
            ],
        )
    if "chunking" in results:
        r = results["chunking"]
        lines += ["## Chunking time against page size (parse + chunk, one long section)", ""]
        lines += _table(
            ["page KB", "chunks", "seconds", "CPU s", "KB per CPU s", "CPU per KB vs smallest"],
            [
                [
                    x["page_kb"],
                    x["chunks"],
                    x["seconds"],
                    x["cpu_seconds"],
                    x["kb_per_cpu_s"],
                    x["cpu_x_smallest_per_kb"],
                ]
                for x in r["rows"]
            ],
        )
        lines += ["Linear growth keeps the last column near 1 (it was quadratic: 38 s at 552 KB).", ""]
    if "build" in results:
        r = results["build"]
        lines += [f"## Build time ({r['sections']} sections, {r['chunks']} chunks; {r['note']})", ""]
        lines += _table(
            ["build", "product s", "texts embedded", "baseline s", "× vs baseline"],
            [[b["build"], b["product_s"], b["embedded"], b["baseline_s"], _x(b["x_vs_baseline"])] for b in r["builds"]],
        )
        lines += [
            f"The baseline has no embedding cache: every build embeds all {r['baseline_paragraphs']} paragraphs.",
            "",
        ]
    if "levers" in results:
        r = results["levers"]
        lines += [f"## Query-embedding levers (single query, {r['queries']} questions after warm-up)", ""]
        lines += _table(
            ["lever", "p50 ms", "p95 ms", "× vs baseline", "note"],
            [
                [x["lever"], x["latency_ms"]["p50"], x["latency_ms"]["p95"], _x(x["x_vs_baseline"]), x["note"]]
                for x in r["single_query"]
            ],
        )
        lines += [
            f"First call after loading: product {r['first_call_ms']['product']} ms, baseline "
            f"{r['first_call_ms']['baseline']} ms (why `serve` warms up before listening). Model load: product "
            f"{r['model_load_s']['product']} s, baseline {r['model_load_s']['baseline']} s.",
            "",
        ]
        lines += ["The same embedders with 16 concurrent callers (as a server's request threads):", ""]
        lines += _table(
            ["embedder", "queries/s", "× vs baseline"],
            [[c["lever"], c["queries_per_s"], _x(c["x_vs_baseline"])] for c in r["concurrent"]],
        )
        lines += [
            "Build batch size (real page passages, length-sorted batches; the product caps a batch at "
            "rows × longest length):",
            "",
        ]
        lines += _table(
            ["backend", "batch", "passages/s", "× vs baseline"],
            [[b["backend"], b["batch_size"], b["passages_per_s"], _x(b["x_vs_baseline"])] for b in r["build_batches"]],
        )
    if "lengths" in results:
        r = results["lengths"]
        lines += ["## Embedding throughput by passage length", ""]
        lines += _table(
            ["characters", "tokens", "product passages/s", "baseline passages/s", "× vs baseline"],
            [
                [x["chars"], x["tokens"], x["product_per_s"], x["baseline_per_s"], _x(x["x_vs_baseline"])]
                for x in r["by_length"]
            ],
        )
        a = r["assumptions"]
        lines += [
            f"Extrapolated cold builds (chunks of ~{a['chunk_chars']} characters plus "
            f"{a['sentences_per_chunk']} sentences of ~{a['sentence_chars']} characters per chunk):",
            "",
        ]
        lines += _table(
            ["chunks", "product s", "baseline s", "× vs baseline"],
            [[x["chunks"], x["product_s"], x["baseline_s"], _x(x["x_vs_baseline"])] for x in r["extrapolation"]],
        )
    if "drcd" in results:
        r = results["drcd"]
        lines += ["## A real ~1k-chunk corpus: DRCD paragraphs", ""]
        if "skipped" in r:
            lines += [f"Skipped: {r['skipped']}.", ""]
        else:
            lines += _table(
                ["figure", "product", "baseline", "× vs baseline"],
                [
                    [
                        "pages / sections / chunks",
                        f"{r['pages']} / {r['sections']} / {r['chunks']}",
                        f"{r['baseline_paragraphs']} paragraphs",
                        "–",
                    ],
                    [
                        "cold build s (texts embedded)",
                        f"{r['build_s']} ({r['texts_embedded']})",
                        r["baseline_build_s"],
                        _x(r["build_x_vs_baseline"]),
                    ],
                    ["query p50 ms", r["query_ms"]["p50"], r["baseline_query_ms"]["p50"], _x(r["query_x_vs_baseline"])],
                    ["query p95 ms", r["query_ms"]["p95"], r["baseline_query_ms"]["p95"], "–"],
                    [f"hit@1 ({r['questions']} DRCD questions)", r["hit_at_1"], r["baseline_hit_at_1"], "–"],
                ],
            )
            lines += [
                f"Extrapolated from this build's {r['seconds_per_chunk']} s per chunk: 10k chunks ≈ "
                f"{r['extrapolated_build_s']['10000']:,} s, 100k ≈ {r['extrapolated_build_s']['100000']:,} s.",
                "",
            ]
    if "scale" in results:
        r = results["scale"]
        lines += [f"## Index at scale ({r['note']}; {r['queries']} real queries)", ""]
        lines += _table(
            [
                "chunks",
                "index",
                "build s",
                "peak RSS MB",
                "index MB",
                "disk MB",
                "query p50 ms",
                "p95 ms",
                "recall@10",
                "× vs baseline",
            ],
            [
                [
                    x["n"],
                    x["kind"]
                    + (" " + ",".join(f"{k}={v}" for k, v in x.get("params", {}).items()) if x.get("params") else ""),
                    x["build_s"],
                    x["peak_rss_mb"],
                    x["index_memory_mb"],
                    x["disk_mb"],
                    x["query_ms"]["p50"],
                    x["query_ms"]["p95"],
                    x.get("recall_at_10"),
                    _x(x["x_vs_baseline"]),
                ]
                for x in r["rows"]
            ],
        )
        bm = [x for x in r["rows"] if x["kind"] == "bm25"]
        if bm:
            lines += [
                "BM25 top-30 with `np.argpartition` instead of a full sort: "
                + "; ".join(f"{x['n']:,}: p50 {x['query_ms_argpartition']['p50']} ms" for x in bm)
                + ".",
                "",
            ]
        if "estimate_100k_query_p50_ms" in r:
            lines += [
                f"100k chunks, one query ≈ embed p50 ({r['embed_ms']['p50']} ms) + dense p50 ({r['chosen_100k']}) "
                f"+ BM25 p50 = {r['estimate_100k_query_p50_ms']} ms (fusion over the candidates adds ~1 ms).",
                "",
            ]
    if "serving" in results:
        lines += ["## Serving levers (a fresh `restake-qa serve` each, query cache off)", ""]
        lines += _table(
            [
                "configuration",
                "c1 p50 ms",
                "c1 p99 ms",
                "c16 answers/s",
                "c16 p99 ms",
                "errors",
                "RSS MB",
                "× vs defaults",
            ],
            [
                [
                    r["config"],
                    r["c1"]["latency_ms"].get("p50"),
                    r["c1"]["latency_ms"].get("p99"),
                    r["c16"]["answers_per_s"],
                    r["c16"]["latency_ms"].get("p99"),
                    r["c1"]["errors"] + r["c16"]["errors"],
                    r["rss_mb"],
                    _x(r["x_c16_vs_defaults"]),
                ]
                for r in results["serving"]["rows"]
            ],
        )
    if "questionlog" in results:
        r = results["questionlog"]
        lines += [
            f"## The question log's cost (POST /api/answer in-process, {r['questions']} questions × {r['rounds']} rounds, "
            "interleaved, query cache off)",
            "",
        ]
        lines += _table(
            ["question log", "p50 ms (median of rounds)", "p95 ms", "p99 ms"],
            [
                ["on", r["median_p50_on_ms"], r["on"].get("p95"), r["on"].get("p99")],
                ["off", r["median_p50_off_ms"], r["off"].get("p95"), r["off"].get("p99")],
            ],
        )
        lines += [
            f"On ÷ off: {r['ratio_on_vs_off']}. `QuestionLog.record_answer` alone (the row and a queue put): "
            f"p50 {r['record_answer_us'].get('p50')} µs, p99 {r['record_answer_us'].get('p99')} µs.",
            "",
        ]
    if "today" in results:
        lines += today_markdown(results["today"])
    return "\n".join(lines)

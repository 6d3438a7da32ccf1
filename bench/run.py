"""restake-qa benchmarks: latency, throughput, build time, scale — each beside the plain baseline.

    make bench                         # everything (about 20–30 min on 2 cores)
    make bench BENCH_ARGS=--quick      # a short smoke run (a few minutes)
    .venv/bin/python bench/run.py [--quick] [--only levers,stages,...] [--out bench/results]

Writes ``bench/results/bench-<time>.json`` and ``.md`` (and ``latest.json``/``latest.md``);
progress goes to stderr. bench/README.md explains every figure. Sections, in run order:
levers, stages, build, chunking, lengths, drcd, scale, http, serving, questionlog, slow_clients, today
(the product beside issue 17's "today", commit d3a265b: DRCD dev file cold build, answers in
process and over HTTP).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BENCH, ROOT, say
from context import Context
from report import markdown, targets
from suites.builds import bench_build, bench_chunking, bench_drcd, bench_scale
from suites.model import bench_lengths, bench_levers, bench_stages
from suites.operating import bench_question_log
from suites.serving import bench_http, bench_serving
from suites.slow_clients import bench_slow_clients
from suites.today import bench_today

SECTIONS = (
    "levers",
    "stages",
    "build",
    "chunking",
    "lengths",
    "drcd",
    "scale",
    "http",
    "serving",
    "questionlog",
    "slow_clients",
    "today",
)


def meta(quick: bool) -> dict[str, Any]:
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
            or "unknown"
        )
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
    functions = {
        "levers": bench_levers,
        "stages": bench_stages,
        "build": bench_build,
        "chunking": bench_chunking,
        "lengths": bench_lengths,
        "drcd": bench_drcd,
        "scale": bench_scale,
        "http": bench_http,
        "serving": bench_serving,
        "questionlog": bench_question_log,
        "slow_clients": bench_slow_clients,
        "today": bench_today,
    }
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
    results["scale"]["estimate_100k_query_p50_ms"] = round(
        embed + dense["query_ms"]["p50"] + bm25["query_ms"]["p50"], 2
    )


def _write(out: Path, stamp: str, results: dict[str, Any]) -> None:
    text = json.dumps(results, ensure_ascii=False, indent=1)
    md = markdown(results)
    for name in (f"bench-{stamp}", "latest"):
        (out / f"{name}.json").write_text(text, "utf-8")
        (out / f"{name}.md").write_text(md, "utf-8")


if __name__ == "__main__":
    sys.exit(main())

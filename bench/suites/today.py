"""The product beside "today's product" of issue 17 (commit d3a265b): a cold build of the DRCD
dev file, the in-process answer per stage, and HTTP latency and throughput — each version in
fresh processes, one after the other in one run, so the ratios share the machine's state.

The earlier commit is taken with ``git archive`` into the run's temporary folder and run with
``PYTHONPATH`` pointing at it (bench/today_worker.py measures either version with the same
code); the section is skipped, saying why, without git history or the DRCD file. The product
is measured at fp32 (the default: same answers) and at int8 (the ``model_precision`` lever).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _util import BENCH, ROOT, ServerProcess, better, drive, free_port, question_bodies, request, say, stats
from context import DRCD, Context

TODAY = "d3a265b"
#: issue 17's targets (on 2 cores): in-process p50, HTTP p50 at concurrency 1, answers/s at 16,
#: and the cold DRCD build against today's.
TARGETS = {"answer_p50_ms": 8, "http_p50_ms": 15, "answers_per_s_c16": 120, "drcd_build_x": 4}
VERSIONS = (("today", TODAY, {}), ("fp32", None, {}), ("int8", None, {"model_precision": "int8"}))


def _tree(ctx: Context) -> Path | None:
    """``src`` of the earlier commit, unpacked once into the run's temporary folder."""
    if "today_src" in ctx.notes:
        return ctx.notes["today_src"]
    target = ctx.tmp / f"src-{TODAY}"
    target.mkdir(exist_ok=True)
    archive = subprocess.run(["git", "archive", TODAY, "src"], cwd=ROOT, capture_output=True, check=False)
    if archive.returncode:
        ctx.notes["today_src"] = None
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    ctx.notes["today_src"] = target / "src"
    return target / "src"


def _env(src: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTAKE_QA_") or k == "RESTAKE_QA_MODEL_CACHE"}
    env["PYTHONPATH"] = str(src or ROOT / "src")
    return {**env, **extra}


def _worker(ctx: Context, name: str, src: Path | None, args: list[str]) -> dict[str, Any]:
    log = ctx.out / "logs" / f"today-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as err:
        out = subprocess.run(
            [sys.executable, str(BENCH / "today_worker.py"), *args],
            env=_env(src),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
        )
    if out.returncode:
        raise RuntimeError(f"today_worker {args[0]} ({name}) failed; see {log}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_today(ctx: Context) -> dict[str, Any]:
    src = _tree(ctx)
    if src is None:
        say(f"  skipped: commit {TODAY} is not in this clone's history")
        return {"skipped": f"commit {TODAY} not found (a shallow clone?)"}
    result: dict[str, Any] = {"commit": TODAY, "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    result["answer"] = _answers(ctx, src)
    result["http"] = _http(ctx, src)
    if DRCD.exists():
        result["drcd"] = _drcd(ctx, src)
    else:
        say(f"  DRCD skipped: {DRCD} is absent")
        result["drcd"] = {"skipped": f"{DRCD.name} not found next to the repository (../shared/data/drcd/)"}
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _answers(ctx: Context, src: Path) -> dict[str, Any]:
    files = [str(ROOT / "tests" / "data" / n) for n in ("questions.jsonl", "questions_holdout.jsonl")]
    rows = {}
    for name, commit, settings in VERSIONS:
        say(f"  in-process answers: {name}")
        work = ctx.tmp / f"today-answer-{name}"
        args = ["answer", "--work", str(work), "--questions", *files, "--rounds", "1" if ctx.quick else "3"]
        rows[name] = _worker(
            ctx, f"answer-{name}", src if commit else None, [*args, "--settings", json.dumps(settings)]
        )
        rows[name]["data_dir"] = str(work / "data")
    for name in ("fp32", "int8"):
        rows[name]["x_vs_today"] = better(rows[name]["total_ms"]["p50"], rows["today"]["total_ms"]["p50"])
    return rows


def _http(ctx: Context, src: Path) -> dict[str, Any]:
    rows = {}
    bodies = question_bodies(ctx.questions)
    for name, commit, settings in VERSIONS:
        port = free_port()
        env = _env(
            src if commit else None,
            RESTAKE_QA_DATA_DIR=ctx.notes.get(f"today_data_{name}", str(ctx.tmp / f"today-answer-{name}" / "data")),
            RESTAKE_QA_CORPUS_DIR=str(ROOT / "corpus"),
            RESTAKE_QA_QUERY_CACHE_SIZE="0",
            RESTAKE_QA_RATE_LIMIT_PER_MINUTE="0",
            **{f"RESTAKE_QA_{k.upper()}": str(v) for k, v in settings.items()},
        )
        argv = [sys.executable, "-m", "restake_qa.cli", "serve", "--port", str(port)]
        server = ServerProcess(argv, port, env, ctx.out / "logs" / f"today-serve-{name}.log")
        say(f"  HTTP: {name} on 127.0.0.1:{port}")
        server.start()
        try:
            for body in bodies[:20]:
                request("POST", "127.0.0.1", port, "/api/answer", body)
            sequential = []
            for body in bodies:
                started = time.perf_counter()
                request("POST", "127.0.0.1", port, "/api/answer", body)
                sequential.append((time.perf_counter() - started) * 1000)
            levels = {}
            for concurrency in (1, 16):
                run = drive(port, bodies, concurrency, 200 if ctx.quick else 2000, 5 if ctx.quick else 30)
                levels[str(concurrency)] = run.to_dict()
                levels[str(concurrency)].pop("latency_ms", None)
        finally:
            server.stop()
        rows[name] = {"latency_c1_ms": stats(sequential), "throughput": levels, "load_average": os.getloadavg()[0]}
    for name in ("fp32", "int8"):
        rows[name]["x_vs_today"] = {
            "p50": better(rows[name]["latency_c1_ms"]["p50"], rows["today"]["latency_c1_ms"]["p50"]),
            "answers_per_s_c16": better(
                rows[name]["throughput"]["16"]["answers_per_s"],
                rows["today"]["throughput"]["16"]["answers_per_s"],
                higher_is_better=True,
            ),
        }
    return rows


def _drcd(ctx: Context, src: Path) -> dict[str, Any]:
    paragraphs = 100 if ctx.quick else 1000
    rows = {}
    for name, commit, settings in VERSIONS:
        say(f"  DRCD cold build, {paragraphs} paragraphs: {name}")
        args = [
            "drcd",
            "--drcd",
            str(DRCD),
            "--work",
            str(ctx.tmp / f"today-drcd-{name}"),
            "--paragraphs",
            str(paragraphs),
            "--questions",
            str(paragraphs),
            "--breakdown",
            "60" if ctx.quick else "300",
            "--settings",
            json.dumps(settings),
        ]
        rows[name] = _worker(ctx, f"drcd-{name}", src if commit else None, args)
        say(f"    {rows[name]['build_s']} s, hit@1 {rows[name]['hit_at_1']}")
    for name in ("fp32", "int8"):
        rows[name]["x_vs_today"] = {
            "build": better(rows[name]["build_s"], rows["today"]["build_s"]),
            "build_cpu": better(rows[name]["build_cpu_s"], rows["today"]["build_cpu_s"]),
        }
    return rows


def today_targets(today: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 17's targets, at fp32 (the default) and int8."""
    if "answer" not in today:
        return []
    rows = []
    for name in ("fp32", "int8"):
        checks = [
            ("in-process answer p50 (ms)", today["answer"][name]["total_ms"]["p50"], TARGETS["answer_p50_ms"], False),
            (
                "HTTP p50 at concurrency 1 (ms)",
                today["http"][name]["latency_c1_ms"]["p50"],
                TARGETS["http_p50_ms"],
                False,
            ),
            (
                "answers/s at concurrency 16",
                today["http"][name]["throughput"]["16"]["answers_per_s"],
                TARGETS["answers_per_s_c16"],
                True,
            ),
        ]
        drcd = today.get("drcd", {})
        if name in drcd:
            checks.append(
                ("DRCD cold build × vs today", drcd[name]["x_vs_today"]["build"], TARGETS["drcd_build_x"], True)
            )
        for label, value, goal, higher in checks:
            met = value is not None and (value >= goal if higher else value <= goal)
            rows.append(
                {
                    "target": f"{label} [{name}]",
                    "goal": f"{'≥' if higher else '≤'} {goal}",
                    "measured": value,
                    "met": met,
                }
            )
        errors = today["http"][name]["throughput"]["16"]["errors"]
        rows.append(
            {"target": f"errors at concurrency 16 [{name}]", "goal": "0", "measured": errors, "met": errors == 0}
        )
        if name in drcd:
            hit, base = drcd[name]["hit_at_1"], drcd["today"]["hit_at_1"]
            rows.append(
                {"target": f"DRCD hit@1 [{name}]", "goal": f"≥ {base} (today)", "measured": hit, "met": hit >= base}
            )
    return rows


def today_markdown(today: dict[str, Any]) -> list[str]:
    """The section's tables: each figure for today's product, the product at fp32 and at int8."""
    if "skipped" in today:
        return [f"## Against today's product ({TODAY})", "", f"Skipped: {today['skipped']}", ""]
    lines = [
        f"## Against today's product ({TODAY}, issue 17)",
        "",
        f"Load average {today['load_average_start']} at the start, {today['load_average_end']} at the end; "
        "each version in fresh processes, one after the other. × is how many times better than today.",
        "",
        "| figure | today | fp32 (default) | × | int8 (lever) | × |",
        "|---|---|---|---|---|---|",
    ]

    def row(label: str, get: Any, higher: bool = False, digits: int = 1) -> None:
        values = []
        for name in ("today", "fp32", "int8"):
            try:
                values.append(get(name))
            except (KeyError, TypeError):
                values.append(None)
        cells = [label, _num(values[0], digits)]
        for v in values[1:]:
            cells += [_num(v, digits), _times(better(v, values[0], higher_is_better=higher))]
        lines.append("| " + " | ".join(cells) + " |")

    a, h = today["answer"], today["http"]
    row("in-process answer p50 (ms)", lambda n: a[n]["total_ms"]["p50"], digits=2)
    row("in-process answer p95 (ms)", lambda n: a[n]["total_ms"]["p95"], digits=2)
    for stage in ("analysis", "embed", "dense", "lexical", "fusion", "compose"):
        row(f"— {stage} p50 (ms)", lambda n, s=stage: a[n]["stages_ms"][s]["p50"], digits=2)
    row("CPU per answer (ms)", lambda n: a[n]["cpu_ms_per_answer"], digits=2)
    row("HTTP p50 / concurrency 1 (ms)", lambda n: h[n]["latency_c1_ms"]["p50"], digits=2)
    row("HTTP p95 / concurrency 1 (ms)", lambda n: h[n]["latency_c1_ms"]["p95"], digits=2)
    row("answers/s, concurrency 1", lambda n: h[n]["throughput"]["1"]["answers_per_s"], higher=True)
    row("answers/s, concurrency 16", lambda n: h[n]["throughput"]["16"]["answers_per_s"], higher=True)
    row("errors at concurrency 16", lambda n: h[n]["throughput"]["16"]["errors"], digits=0)
    d = today.get("drcd", {})
    if "today" in d:
        row("DRCD cold build (s)", lambda n: d[n]["build_s"])
        row("DRCD cold build, CPU (s)", lambda n: d[n]["build_cpu_s"])
        row("DRCD texts embedded", lambda n: d[n]["texts_embedded"], digits=0)
        row("DRCD texts/s", lambda n: d[n]["texts_per_s"], higher=True)
        row("DRCD hit@1", lambda n: d[n]["hit_at_1"], higher=True, digits=3)
        row("DRCD query p50 (ms)", lambda n: d[n]["query_ms"]["p50"], digits=2)
        lines += ["", "Where a cold DRCD build's model time goes (each kind embedded alone, a sample timed):", ""]
        lines += ["| kind | texts | distinct | tokens (mean) | today texts/s | fp32 texts/s | int8 texts/s |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for kind, k in d["fp32"].get("breakdown", {}).get("kinds", {}).items():
            speeds = [
                d[n].get("breakdown", {}).get("kinds", {}).get(kind, {}).get("sample_texts_per_s")
                for n in ("today", "fp32", "int8")
            ]
            lines.append(
                f"| {kind} | {k['texts']:,} | {k['distinct']:,} | {_num(k['tokens'], 0)} ({_num(k['tokens_mean'], 1)}) | "
                + " | ".join(_num(s, 1) for s in speeds)
                + " |"
            )
        lines += ["", "Texts/s by length (passages, tokens with prompt and specials):", ""]
        lines += ["| tokens | texts | today | fp32 | × | int8 | × |", "|---|---|---|---|---|---|---|"]
        for i, bucket in enumerate(d["fp32"].get("breakdown", {}).get("lengths", [])):
            speeds = []
            for n in ("today", "fp32", "int8"):
                buckets = d[n].get("breakdown", {}).get("lengths", [])
                speeds.append(buckets[i]["texts_per_s"] if i < len(buckets) else None)
            lines.append(
                f"| {bucket['tokens']} | {bucket['texts']} | {_num(speeds[0], 1)} | {_num(speeds[1], 1)} | "
                f"{_times(better(speeds[1], speeds[0], higher_is_better=True))} | {_num(speeds[2], 1)} | "
                f"{_times(better(speeds[2], speeds[0], higher_is_better=True))} |"
            )
        emb = d["fp32"].get("embedding") or {}
        if emb.get("tokens"):
            lines += [
                "",
                f"fp32 build: {emb['embedded']:,} distinct texts of {emb['texts']:,}, {emb['tokens']:,} tokens, "
                f"{emb['padded_tokens']:,} with padding ({100 * (emb['padded_tokens'] / emb['tokens'] - 1):.1f} % waste), "
                f"{emb['batches']:,} model calls.",
            ]
    return lines + [""]


def _num(v: Any, digits: int) -> str:
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def _times(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"

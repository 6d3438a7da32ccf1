"""One measurement in a fresh process, against whichever ``restake_qa`` is importable — the
working tree's, or an earlier commit's (``PYTHONPATH=<git archive>/src``) — so that the
product and an earlier product are measured by the same code (bench/suites/today.py).

    python bench/today_worker.py drcd --drcd DRCD_dev.json --work DIR [--paragraphs N] [--settings JSON]
    python bench/today_worker.py answer --work DIR --questions FILE... [--settings JSON]

Prints one JSON object on the last line of stdout; progress goes to stderr. Uses only what
every version since d3a265b has: ``load_settings``, ``load_embedder``, ``load_text_tools``,
``build_index``, ``Engine``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _util import ROOT, say
from _util import stats as pct  # this script's folder (bench/) is first on sys.path

#: Token-length buckets of the texts/s-by-length table (prompt and specials included).
LENGTHS = ((1, 16), (17, 32), (33, 64), (65, 128), (129, 512))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_drcd(drcd: Path, folder: Path, paragraphs: int) -> list[tuple[str, str]]:
    """DRCD paragraphs as markdown pages: one page per article, one section per paragraph.
    Returns (first question, its paragraph's anchor) for each paragraph that has one."""
    folder.mkdir(parents=True, exist_ok=True)
    questions: list[tuple[str, str]] = []
    written = 0
    for article in json.loads(drcd.read_text("utf-8"))["data"]:
        lines = ["---", f"title: {json.dumps(article['title'], ensure_ascii=False)}", "lang: zh-tw", "---", ""]
        for k, paragraph in enumerate(article["paragraphs"], 1):
            if written >= paragraphs:
                break
            anchor = f"p-{paragraph['id']}"
            lines += [f"## {article['title']}（第 {k} 段） {{#{anchor}}}", "", paragraph["context"].strip(), ""]
            if paragraph["qas"]:
                questions.append((paragraph["qas"][0]["question"], anchor))
            written += 1
        (folder / f"drcd-{article['id']}.md").write_text("\n".join(lines), "utf-8")
        if written >= paragraphs:
            break
    return questions


def load(settings_json: str, data: Path, corpus: Path) -> tuple[Any, Any, Any, float]:
    from restake_qa.config import load_settings
    from restake_qa.embedding import load_embedder
    from restake_qa.text import load_text_tools

    environ = {k: v for k, v in os.environ.items() if k in ("RESTAKE_QA_MODEL_CACHE", "XDG_CACHE_HOME", "HOME")}
    overrides = {"data_dir": str(data), "corpus_dir": str(corpus), "query_cache_size": 0, **json.loads(settings_json)}
    settings = load_settings(overrides, environ=environ)
    started = time.perf_counter()
    embedder = load_embedder(settings, progress=say)
    embedder.embed_queries(["第一次呼叫"])
    return settings, embedder, load_text_tools(corpus), time.perf_counter() - started


def build(settings: Any, embedder: Any, tools: Any, corpus: Path, data: Path) -> tuple[Any, float, float]:
    from restake_qa.build import build_index

    wall, cpu = time.perf_counter(), cpu_seconds()
    report = build_index(corpus, data, embedder, settings, tools=tools, progress=lambda m: say("  " + m.strip()))
    return report, time.perf_counter() - wall, cpu_seconds() - cpu


def texts_by_kind(index: Any) -> dict[str, tuple[list[str], bool]]:
    """What a build embeds, by kind: (texts, embedded as questions)."""
    kinds = {
        "chunks": ([c.embedding_text for c in index.chunks], False),
        "sentences": ([s.text for s in index.sentences], False),
        "headings": ([s.english_name for s in index.sections], False),
    }
    if hasattr(index, "title_vectors"):
        kinds["titles"] = ([s.title for s in index.sections], True)
    return kinds


def embed_like_a_build(embedder: Any, texts: list[str], as_queries: bool) -> None:
    """Embed ``texts`` the way this version's build does."""
    if hasattr(embedder, "embed_batches"):
        for _ in embedder.embed_batches(texts, [as_queries] * len(texts)):
            pass
    elif as_queries:
        embedder.embed_queries(texts)
    else:
        for start in range(0, len(texts), 32):  # the cache commit step of earlier builds
            embedder.embed_passages(texts[start : start + 32])


def breakdown(embedder: Any, index: Any, sample: int) -> dict[str, Any]:
    """Where a cold build's model time goes: each kind of text, and texts/s by token length
    (a sample of each), embedded as this version's build embeds them."""
    token_ids = getattr(embedder, "token_ids", None)
    prompts = {False: "passage: ", True: "query: "}
    kinds = texts_by_kind(index)
    out: dict[str, Any] = {"kinds": {}, "lengths": []}
    pool: list[tuple[str, int, bool]] = []
    for name, (texts, as_queries) in kinds.items():
        lengths = [len(r) for r in token_ids([prompts[as_queries] + t for t in texts])] if token_ids else []
        distinct = len(set(texts))
        rng = np.random.default_rng(17)
        picked = sorted(rng.choice(len(texts), size=min(sample, len(texts)), replace=False).tolist())
        part = [texts[i] for i in picked]
        wall, cpu = time.perf_counter(), cpu_seconds()
        embed_like_a_build(embedder, part, as_queries)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        out["kinds"][name] = {
            "texts": len(texts),
            "distinct": distinct,
            "tokens": int(sum(lengths)) if lengths else None,
            "tokens_mean": round(float(np.mean(lengths)), 1) if lengths else None,
            "sample": len(part),
            "sample_texts_per_s": round(len(part) / wall, 1),
            "sample_cpu_ms_per_text": round(1000 * cpu / len(part), 2),
            "estimated_s": round(len(texts) * wall / len(part), 1),
        }
        if not as_queries and lengths:
            pool += [(t, n, as_queries) for t, n in zip(texts, lengths)]
    for low, high in LENGTHS:
        texts = [t for t, n, _ in pool if low <= n <= high][:sample]
        if len(texts) < 10:
            continue
        lengths = [len(r) for r in token_ids([prompts[False] + t for t in texts])]
        wall, cpu = time.perf_counter(), cpu_seconds()
        embed_like_a_build(embedder, texts, False)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        out["lengths"].append(
            {
                "tokens": f"{low}–{high}",
                "texts": len(texts),
                "tokens_mean": round(float(np.mean(lengths)), 1),
                "texts_per_s": round(len(texts) / wall, 1),
                "tokens_per_s": round(sum(lengths) / wall),
                "cpu_ms_per_text": round(1000 * cpu / len(texts), 2),
            }
        )
    return out


def run_drcd(args: argparse.Namespace) -> dict[str, Any]:
    from restake_qa.service import Engine

    work = Path(args.work)
    corpus, data = work / "corpus", work / "data"
    questions = write_drcd(Path(args.drcd), corpus, args.paragraphs)
    settings, embedder, tools, load_s = load(args.settings, data, corpus)
    say(f"cold build of {args.paragraphs} DRCD paragraphs")
    load_before = os.getloadavg()[0]
    report, wall, cpu = build(settings, embedder, tools, corpus, data)
    say(f"  {wall:.1f} s wall, {cpu:.1f} s CPU")
    engine = Engine(settings, embedder=embedder, tools=tools)
    asked = questions[: args.questions]
    for q, _ in asked[:10]:
        engine.answer(q)
    latencies, hits = [], 0
    for q, gold in asked:
        started = time.perf_counter()
        answer, _ = engine.answer(q)
        latencies.append((time.perf_counter() - started) * 1000)
        hits += bool(answer.retrieval.hits) and answer.retrieval.hits[0].anchor == gold
    result: dict[str, Any] = {
        "paragraphs": args.paragraphs,
        "sections": report.sections,
        "chunks": report.chunks,
        "texts_embedded": report.embedded,
        "build_s": round(wall, 2),
        "build_cpu_s": round(cpu, 2),
        "load_average_before": round(load_before, 2),
        "texts_per_s": round(report.embedded / wall, 1),
        "embedding": getattr(report, "embedding", None),
        "model_load_s": round(load_s, 2),
        "precision": getattr(embedder, "precision", "fp32"),
        "questions": len(asked),
        "hit_at_1": round(hits / max(len(asked), 1), 4),
        "query_ms": pct(latencies),
    }
    if args.breakdown:
        say("where the model time goes: each kind of text, and texts/s by length")
        result["breakdown"] = breakdown(embedder, engine.snapshot().index, args.breakdown)
    return result


def run_answer(args: argparse.Namespace) -> dict[str, Any]:
    """In-process Engine.answer over the real page: total and per stage, after a warm-up."""
    from restake_qa.service import Engine

    work = Path(args.work)
    data = work / "data"
    settings, embedder, tools, _ = load(args.settings, data, ROOT / "corpus")
    build(settings, embedder, tools, ROOT / "corpus", data)
    engine = Engine(settings, embedder=embedder, tools=tools)
    questions: list[str] = []
    for path in args.questions:
        questions += [json.loads(line)["question"] for line in open(path, encoding="utf-8") if line.strip()]
    questions = list(dict.fromkeys(questions))
    for q in questions[:20]:
        engine.answer(q)
    total: list[float] = []
    stages: dict[str, list[float]] = {}
    cpu = cpu_seconds()
    for _ in range(args.rounds):
        for q in questions:
            started = time.perf_counter()
            answer, _ = engine.answer(q)
            took = (time.perf_counter() - started) * 1000
            total.append(took)
            timings = dict(answer.retrieval.timings_ms)
            timings["compose"] = took - sum(timings.values())
            for name, ms in timings.items():
                stages.setdefault(name, []).append(ms)
    cpu = cpu_seconds() - cpu
    return {
        "questions": len(questions),
        "rounds": args.rounds,
        "total_ms": pct(total),
        "stages_ms": {name: pct(values) for name, values in stages.items()},
        "cpu_ms_per_answer": round(1000 * cpu / max(len(total), 1), 2),
        "precision": getattr(embedder, "precision", "fp32"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    drcd = sub.add_parser("drcd")
    drcd.add_argument("--drcd", required=True)
    drcd.add_argument("--work", required=True)
    drcd.add_argument("--paragraphs", type=int, default=1000)
    drcd.add_argument("--questions", type=int, default=1000)
    drcd.add_argument("--breakdown", type=int, default=0, help="texts per kind and per length to time (0: none)")
    drcd.add_argument("--settings", default="{}")
    answer = sub.add_parser("answer")
    answer.add_argument("--work", required=True)
    answer.add_argument("--questions", nargs="+", required=True)
    answer.add_argument("--rounds", type=int, default=1)
    answer.add_argument("--settings", default="{}")
    args = parser.parse_args()
    result = run_drcd(args) if args.mode == "drcd" else run_answer(args)
    import restake_qa

    result["restake_qa"] = str(Path(restake_qa.__file__).parent)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The operator's side: what the question log costs an answer."""

from __future__ import annotations

import statistics
import time
from typing import Any

from _util import say, stats
from context import Context


def bench_question_log(ctx: Context) -> dict[str, Any]:
    """``POST /api/answer`` in-process (Flask's test client: routing, validation, the answer, its
    JSON) over the real index, with the question log on and off, interleaved question by
    question so that both see the same machine; query cache off. Rounds alternate which goes
    first. Also the cost of ``QuestionLog.record_answer`` alone (the only work the log adds to
    a request: the row's few fields and a queue put)."""
    from restake_qa import create_app
    from restake_qa.questionlog import QuestionLog

    engine = ctx.engine
    settings = engine.settings
    apps = {
        "on": create_app(settings.replace(question_log=True), engine=engine).test_client(),
        "off": create_app(settings.replace(question_log=False), engine=engine).test_client(),
    }
    questions = ctx.questions
    rounds = 2 if ctx.quick else 5
    for q in questions[:20]:  # warm-up
        for client in apps.values():
            client.post("/api/answer", json={"question": q})
    samples: dict[str, list[float]] = {"on": [], "off": []}
    round_p50: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(rounds):
        order = ["on", "off"] if r % 2 == 0 else ["off", "on"]
        this: dict[str, list[float]] = {"on": [], "off": []}
        for q in questions:
            for name in order:
                started = time.perf_counter()
                response = apps[name].post("/api/answer", json={"question": q})
                this[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
                assert (response.get_json()["answer_id"] is None) == (name == "off")
        for name in this:
            samples[name] += this[name]
            round_p50[name].append(statistics.median(this[name]))
        say(f"    round {r + 1}/{rounds}: p50 on {round_p50['on'][-1]:.2f} ms, off {round_p50['off'][-1]:.2f} ms")
    log = QuestionLog(ctx.tmp / "record-only.sqlite", 0, queue_size=100_000)
    body = apps["on"].post("/api/answer", json={"question": questions[0]}).get_json()
    record_us = []
    for q in questions * 10:
        started = time.perf_counter()
        log.record_answer(q, body)
        record_us.append((time.perf_counter() - started) * 1e6)
    log.flush(timeout=60)
    on_p50, off_p50 = statistics.median(round_p50["on"]), statistics.median(round_p50["off"])
    return {
        "questions": len(questions),
        "rounds": rounds,
        "on": stats(samples["on"]),
        "off": stats(samples["off"]),
        "p50_per_round_ms": round_p50,
        "median_p50_on_ms": round(on_p50, 3),
        "median_p50_off_ms": round(off_p50, 3),
        "ratio_on_vs_off": round(on_p50 / off_p50, 3),
        "record_answer_us": {k: round(v, 1) for k, v in stats(record_us).items()},
    }

"""What the benchmark sections share: settings, the two embedders, the real index, the questions."""

from __future__ import annotations

import os
import tempfile
import time
from functools import cached_property
from pathlib import Path
from typing import Any

from restake_qa.config import Settings

from _util import ROOT, say

DRCD = ROOT.parent / "shared" / "data" / "drcd" / "DRCD_dev.json"


class Context:
    """What the sections share: settings, the two embedders, the real index, the questions."""

    def __init__(self, quick: bool, out: Path) -> None:
        self.quick = quick
        self.out = out
        self.tmp = Path(tempfile.mkdtemp(prefix="restake-qa-bench-"))
        self.notes: dict[str, Any] = {}

    def settings(self, **overrides: Any) -> Settings:
        from restake_qa.config import load_settings

        environ = {k: v for k, v in os.environ.items() if k in ("RESTAKE_QA_MODEL_CACHE", "XDG_CACHE_HOME", "HOME")}
        base = {
            "data_dir": str(self.tmp / "data"),
            "corpus_dir": str(ROOT / "corpus"),
            "query_cache_size": 0,
            "rate_limit_per_minute": 0,
        }
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

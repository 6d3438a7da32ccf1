"""The plain baseline every benchmark figure is compared with.

It is what a first attempt would be, and the same definition as
``restake_qa.evaluation.baseline_system``: one chunk per paragraph (line) of each section,
dense search only (a NumPy dot product over the paragraph vectors), the model run through
sentence-transformers with torch, no embedding cache, the top paragraph as the answer, and —
over HTTP — Flask's development server (``app.run``).

Run as a server (the benchmark starts it as a subprocess)::

    python bench/baseline.py --port 8123 [--corpus corpus]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def load_torch_embedder():
    """The model with the torch backend and no query cache: the baseline's embedder."""
    from restake_qa.config import load_settings
    from restake_qa.embedding import load_embedder

    return load_embedder(load_settings({"model_backend": "torch", "query_cache_size": 0}))


class PlainBaseline:
    """Paragraph chunks, dense only; ``answer`` returns the top paragraph and stage timings."""

    def __init__(self, sections, embedder) -> None:
        self.embedder = embedder
        self.paragraphs = [(s, line) for s in sections for line in s.text.split("\n") if line.strip()]
        started = time.perf_counter()
        self.vectors = embedder.embed_passages([p for _, p in self.paragraphs])
        self.build_seconds = time.perf_counter() - started

    def answer(self, question: str) -> tuple[dict[str, Any], dict[str, float]]:
        timings: dict[str, float] = {}
        t = time.perf_counter()
        q = self.embedder.embed_queries([question])[0]
        timings["embed"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        scores = self.vectors @ q
        order = np.argsort(-scores)
        timings["dense"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        anchors: list[str] = []
        for i in order:
            if self.paragraphs[i][0].anchor not in anchors:
                anchors.append(self.paragraphs[i][0].anchor)
            if len(anchors) == 5:
                break
        section, text = self.paragraphs[int(order[0])]
        body = {
            "answer": text,
            "citations": [{"n": 1, "title": section.title, "anchor": section.anchor, "url": section.url}],
            "sections": anchors,
        }
        timings["compose"] = (time.perf_counter() - t) * 1000
        return body, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    args = parser.parse_args()

    from flask import Flask, jsonify, request

    from restake_qa.corpus import load_corpus

    baseline = PlainBaseline(load_corpus(args.corpus), load_torch_embedder())
    print(f"baseline: {len(baseline.paragraphs)} paragraphs embedded in {baseline.build_seconds:.1f} s", flush=True)
    app = Flask("plain-baseline")

    @app.get("/api/health")
    def health():
        return jsonify({"status": "ok", "paragraphs": len(baseline.paragraphs)})

    @app.post("/api/answer")
    def answer():
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("question"), str) or not body["question"].strip():
            return jsonify({"error": {"code": "bad_request", "message": "send {\"question\": \"…\"}"}}), 400
        result, _ = baseline.answer(body["question"])
        return jsonify(result)

    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    sys.exit(main())

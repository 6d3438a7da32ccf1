"""The plain baseline every benchmark figure is compared with.

It is :class:`restake_qa.evaluation.baseline.PlainBaseline` (one chunk per paragraph, dense
search only, the top paragraph as the answer — what ``restake-qa eval`` scores beside the
product), with the model run through sentence-transformers with torch, no embedding cache,
and — over HTTP — Flask's development server (``app.run``).

Run as a server (the benchmark starts it as a subprocess)::

    python bench/baseline.py --port 8123 [--corpus corpus]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restake_qa.evaluation.baseline import PlainBaseline


def load_torch_embedder():
    """The model with the torch backend and no query cache: the baseline's embedder."""
    from restake_qa.config import load_settings
    from restake_qa.embedding import load_embedder

    return load_embedder(load_settings({"model_backend": "torch", "query_cache_size": 0}))


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
            return jsonify({"error": {"code": "bad_request", "message": 'send {"question": "…"}'}}), 400
        result, _ = baseline.answer(body["question"])
        return jsonify(result)

    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    sys.exit(main())

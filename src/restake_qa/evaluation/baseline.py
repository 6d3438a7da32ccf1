"""The plain baseline every quality and speed figure is compared with: what a first attempt
would be. One chunk per paragraph (line) of each section, dense search only (a NumPy dot
product over the paragraph vectors), no refusal, the top paragraph as the answer.

``restake-qa eval`` scores it beside the product; ``bench/`` runs it with torch and Flask's
development server (``bench/baseline.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..corpus import Section
from ..embedding import Embedder
from .sections import Ranking


class PlainBaseline:
    """Paragraph chunks, dense only."""

    def __init__(self, sections: Sequence[Section], embedder: Embedder) -> None:
        self.embedder = embedder
        self.paragraphs = [(s, line) for s in sections for line in s.text.split("\n") if line.strip()]
        started = time.perf_counter()
        self.vectors = embedder.embed_passages([p for _, p in self.paragraphs])
        self.build_seconds = time.perf_counter() - started

    def answer(self, question: str, top_k: int = 5) -> tuple[dict[str, Any], dict[str, float]]:
        """The top paragraph as the answer (the API's shape, reduced), the ``top_k`` sections,
        and stage timings in ms."""
        timings: dict[str, float] = {}
        t = time.perf_counter()
        q = self.embedder.embed_queries([question])[0]
        timings["embed"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        order = np.argsort(-(self.vectors @ q))
        timings["dense"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        anchors: list[str] = []
        for i in order:
            if self.paragraphs[i][0].anchor not in anchors:
                anchors.append(self.paragraphs[i][0].anchor)
            if len(anchors) == top_k:
                break
        section, text = self.paragraphs[int(order[0])]
        body = {
            "answer": text,
            "citations": [{"n": 1, "title": section.title, "anchor": section.anchor, "url": section.url}],
            "sections": anchors,
        }
        timings["compose"] = (time.perf_counter() - t) * 1000
        return body, timings


def baseline_system(sections: Sequence[Section], embedder: Embedder) -> Callable[[str], Ranking]:
    """The baseline as a system to evaluate: its sections, never refusing."""
    baseline = PlainBaseline(sections, embedder)

    def run(question: str) -> Ranking:
        body, _ = baseline.answer(question)
        return Ranking(tuple(body["sections"]), False)

    return run

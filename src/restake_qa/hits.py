"""What a search returns: a section's scores, its best chunks, the hits of one question and
the decision whether to answer (made by :mod:`restake_qa.retrieval`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .analysis import QuestionAnalysis
from .chunking import Chunk
from .corpus import Section
from .refusal import RefusalDecision


@dataclass(frozen=True)
class Scores:
    dense: float  # 0–1, relative to the question's best section
    lexical: float  # 0–1
    fused: float
    cosine: float  # raw cosine of the best chunk
    sentence: float = 0.0  # 0–1, relative
    anchor: float = 0.0  # 0–1, relative
    heading: float = 0.0  # 0–1
    intent: float = 0.0  # 1 when the section's heading asks what the question asks (a definition, a reason…)
    substance: float = 1.0  # 0 for a reading list (links, videos) when the question does not ask for reading

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in vars(self).items()}


@dataclass(frozen=True)
class ChunkHit:
    chunk: Chunk
    scores: Scores
    matched_terms: tuple[str, ...]


@dataclass(frozen=True)
class Hit:
    """A retrieved section with its best chunks and why it was retrieved."""

    section: Section  # the version the asker reads (see alignment.reading_order)
    chunks: tuple[ChunkHit, ...]  # that version's, best first
    scores: Scores  # the section's features and fused score, over its versions
    matched_terms: tuple[str, ...]
    versions: tuple[Section, ...] = ()  # every language version of the section, as read

    @property
    def anchor(self) -> str:
        return self.section.anchor


@dataclass(frozen=True)
class Retrieval:
    question: str
    language: str
    hits: tuple[Hit, ...]
    refused: bool
    evidence: dict[str, Any]
    timings_ms: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    analysis: QuestionAnalysis | None = field(default=None, repr=False, compare=False)
    refusal: RefusalDecision | None = field(default=None, compare=False)


def relative(cosine: float, best: float, spread: float) -> float:
    """A cosine relative to the best one for the same question: 1 at the best, 0 at
    ``spread`` below it (multilingual-e5 cosines sit in a narrow band whose level depends on
    the question's language, so only differences mean something)."""
    return max(0.0, 1.0 - (best - cosine) / spread)

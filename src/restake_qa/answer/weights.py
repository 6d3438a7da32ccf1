"""The features a candidate unit is scored by, and the ``answer_unit_weights`` setting that
weighs them (read by :mod:`restake_qa.answer.select`, fitted by the evaluation's tuning)."""

from __future__ import annotations

from ..errors import ConfigError

#: What a candidate unit's score is made of: the model's similarity to the question (relative
#: to the best unit), the question's words it holds (relative, absolute), whether it is the row
#: the question names or holds a focus term, its section's retrieval score and rank, whether
#: the section's heading asks the same kind of question, the intent's cue words, whether it
#: opens its section, and its kind. The weights are the ``answer_unit_weights`` setting.
UNIT_FEATURES = (
    "dense",
    "lexical",
    "lexical_abs",
    "label",
    "label_aside",
    "text",
    "fused",
    "rank0",
    "rank1",
    "heading",
    "title",
    "cue",
    "find",
    "first",
    "row",
    "step",
    "item",
    "alert",
    "video",
)


def parse_unit_weights(text: str) -> dict[str, float]:
    """``"dense=0.4 lexical=0.35 …"`` → weights of :data:`UNIT_FEATURES` (missing ones are 0)."""
    weights: dict[str, float] = {}
    for part in text.split():
        name, _, value = part.partition("=")
        if name not in UNIT_FEATURES:
            raise ConfigError(f"answer_unit_weights: {name!r} is not one of {', '.join(UNIT_FEATURES)}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ConfigError(f"answer_unit_weights: {value!r} in {part!r} is not a number") from None
    return weights

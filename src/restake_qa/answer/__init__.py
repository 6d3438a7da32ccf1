"""Retrieval → an extractive answer whose every claim is cited.

* :mod:`.model` — :class:`Answer`, :class:`AnswerItem`, :class:`Citation` and the API's JSON;
* :mod:`.followup` — follow-ups made to stand alone as readable questions;
* :mod:`.select` — what to quote, by the question's intent (units of :mod:`restake_qa.units`);
* :mod:`.render` — how quotations read, and the fixed-template lines around them;
* :mod:`.compose` — putting it together (or explaining a refusal).
"""

from __future__ import annotations

from .compose import compose
from .followup import resolve_question
from .model import Answer, AnswerItem, Citation
from .render import ENGLISH_NOTE, VERSION_NOTES

__all__ = ["ENGLISH_NOTE", "VERSION_NOTES", "Answer", "AnswerItem", "Citation", "compose", "resolve_question"]

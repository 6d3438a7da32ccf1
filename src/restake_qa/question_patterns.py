"""The pattern tables a question is read with (``data/intents.toml``, ``data/not_answerable.toml``),
compiled once for one set of text tools: intents per language, fillers, likeness, audience, live
data, predictions, legal advice and what is not a question. :mod:`restake_qa.analysis` applies them."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .text import CJK, TextTools

DATA = Path(__file__).parent / "data"
INTENTS = ("definition", "list", "yes_no", "comparison", "how_to", "reason", "quantity", "who", "consequence")


@dataclass(frozen=True)
class _Rule:
    intent: str
    pattern: re.Pattern[str]
    source: str


class QuestionPatterns:
    """The compiled pattern tables of ``data/intents.toml`` and ``data/not_answerable.toml``."""

    def __init__(self, tools: TextTools, intents: dict | None = None, refusals: dict | None = None) -> None:
        intents = intents if intents is not None else _load_toml("intents.toml")
        refusals = refusals if refusals is not None else _load_toml("not_answerable.toml")
        self.tools = tools
        self.priority: tuple[str, ...] = tuple(intents["priority"])
        unknown = set(self.priority) - set(INTENTS)
        if unknown:
            raise ValueError(f"intents.toml: unknown intents in priority: {sorted(unknown)}")
        self.rules: dict[str, list[_Rule]] = {"zh": [], "en": []}
        for language in ("zh-tw", "zh-cn", "en"):
            for entry in intents.get(language, []):
                for pattern in entry["patterns"]:
                    self.rules["en" if language == "en" else "zh"].append(
                        _Rule(entry["intent"], self._compile(pattern, language), pattern)
                    )
        resources = intents.get("resources", {})
        self.resources = self._either(resources.get("zh", ()), resources.get("en", ()))
        self.media = self._either(resources.get("media_zh", ()), resources.get("media_en", ()))
        requests = intents.get("requests", {})
        self.requests = self._either(requests.get("zh", ()), requests.get("en", ()))
        likeness = intents.get("likeness", {})
        self.likeness = self._either(likeness.get("zh", ()), likeness.get("en", ()))
        fillers = intents.get("fillers", {})
        self.fillers = frozenset(w.lower() for w in fillers.get("en", ())) | frozenset(
            tools.normalize(w) for w in fillers.get("zh", ())
        )
        self.filler_characters = frozenset(tools.normalize(fillers.get("zh_characters", "")))
        #: …as written (Traditional): 係 glued to a word is Cantonese, 系 in Simplified text may be 系統's
        self.filler_characters_written = frozenset(fillers.get("zh_characters", ""))
        formats = intents.get("formats", {})
        self.formats = [(i, self._compile(p, "zh-tw")) for i in INTENTS for p in formats.get(i, ())]
        self.implied = self._word_table(intents.get("implied", []))
        respellings = intents.get("respellings", {})
        self.respellings = [
            (re.compile(p), r)
            for pattern, replacement in respellings.get("zh", ())
            for p, r in dict.fromkeys(
                [(pattern, replacement), (tools.to_simplified(pattern), tools.to_simplified(replacement))]
            )
        ] + [(re.compile(p, re.IGNORECASE), r) for p, r in respellings.get("en", ())]
        self.intent_words: dict[str, tuple[str, ...]] = {
            intent: tuple(words) for intent, words in intents.get("intent_words", {}).items()
        }
        self.audience = self._word_table(intents.get("audience", []))
        self.audience_has = self._word_table(
            [{"pattern": e["has"], "words": e["words"]} for e in intents.get("audience", []) if "has" in e]
        )
        live = refusals["live_data"]
        self.live_markers = self._by_family(live["markers_zh"], live["markers_en"])
        self.rumours = self._either(live.get("rumours_zh", ()), live.get("rumours_en", ()))
        self.live_quantities = self._by_family(live["quantities_zh"], live["quantities_en"])
        self.prediction = self._by_family(refusals["prediction"]["zh"], refusals["prediction"]["en"])
        self.legal = self._by_family(refusals["legal"]["zh"], refusals["legal"]["en"])
        noise = refusals["not_a_question"]
        self.noise = {
            kind: [self._compile(p, "zh-tw" if CJK.search(p) else "en") for p in noise[kind]]
            for kind in ("markup", "template", "injection", "greeting")
        }

    def _compile(self, pattern: str, language: str) -> re.Pattern[str]:
        if language != "en":
            pattern = self.tools.to_simplified(pattern)
        return re.compile(pattern, re.IGNORECASE)

    def _by_family(self, zh: Iterable[str], en: Iterable[str]) -> dict[str, list[re.Pattern[str]]]:
        """Chinese patterns (either script) and English ones, apart: matched by the question's family."""
        return {"zh": [self._compile(p, "zh-tw") for p in zh], "en": [self._compile(p, "en") for p in en]}

    def _either(self, zh: Iterable[str], en: Iterable[str]) -> list[re.Pattern[str]]:
        """Chinese and English patterns together: matched against every question."""
        family = self._by_family(zh, en)
        return family["zh"] + family["en"]

    def _word_table(self, entries: list[dict]) -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
        """``[[implied]]``-style entries: a pattern (either script) and the words it brings."""
        return [(self._compile(entry["pattern"], "zh-tw"), tuple(entry["words"])) for entry in entries]

    def intent_of(self, norm: str, family: str) -> tuple[str, str]:
        """The intent of a question in its matching form (Simplified, lower case) and the pattern
        that says so: an answer format up front, else the first intent in ``priority`` a rule of
        its language family matches once polite requests are set aside, else ``other``."""
        for intent, pattern in self.formats:  # "yes or no:" up front
            if pattern.search(norm):
                return intent, pattern.pattern
        for request in self.requests:  # 「可以講給我聽嗎」 asks for the answer, not a yes/no
            norm = request.sub(" ", norm)
        matched: dict[str, str] = {}
        for rule in self.rules[family]:
            if rule.intent not in matched and rule.pattern.search(norm):
                matched[rule.intent] = rule.source
        for intent in self.priority:
            if intent in matched:
                return intent, matched[intent]
        return "other", ""

    def respell(self, text: str) -> str:
        """``text`` with the page's words for their slips and mishearings (``[respellings]``:
        再指押 → 再質押, "re stake" → "restake")."""
        for pattern, replacement in self.respellings:
            text = pattern.sub(replacement, text)
        return text

    def audience_of(self, text: str, comparison: bool = False) -> tuple[str, ...]:
        """The steps column's header words for who asks: the last ``[[audience]]`` entry ``text``
        matches, or every one that matches in a comparison."""
        matched = [words for pattern, words in self.audience if pattern.search(text)]
        if comparison:
            return tuple(dict.fromkeys(w for words in matched for w in words))
        return matched[-1] if matched else ()

    def first_step_done(self, text: str) -> tuple[str, ...]:
        """The steps columns' header words whose first step ``text`` says is done: the asker holds
        what it gives (「手里一堆 stETH」) or runs their own validator."""
        return tuple(dict.fromkeys(w for pattern, words in self.audience_has if pattern.search(text) for w in words))

    @staticmethod
    def words_of(table: list[tuple[re.Pattern[str], tuple[str, ...]]], text: str) -> list[str]:
        """The words of every entry of ``table`` whose pattern ``text`` matches, in order, once each."""
        return list(dict.fromkeys(w for pattern, words in table if pattern.search(text) for w in words))


def _load_toml(name: str) -> dict:
    with open(DATA / name, "rb") as fh:
        return tomllib.load(fh)

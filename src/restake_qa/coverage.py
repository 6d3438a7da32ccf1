"""Which words the indexed pages talk about: whether a question's focus term is covered.

A term is covered when the pages use it — in any language version or script, in a title, the
text or an anchor's English words — directly, through the glossary and the synonyms file (slash
→ 罰沒, withdraw/提现 → 提款), as a light English stem (restaked → restak), or with one typo
(restakng, 中新化 → 中心化).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from .analysis import FocusTerm
from .corpus import Section
from .text import TextTools, anchor_words, stem

_LATIN_WORD = re.compile(r"[a-z][a-z0-9]*(?:[.'’+-][a-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACES = re.compile(r"\s+")


def _variants(word: str) -> set[str]:
    """Light English inflections of ``word`` back to a base form: riskier → risky, risk;
    penalties → penalty; delegated → delegate, delegat; a stem as ``text.stem`` makes it."""
    out = {word, stem(word)}
    for suffix, repl in (
        ("iest", "y"),
        ("ier", "y"),
        ("ies", "y"),
        ("ied", "y"),
        ("est", ""),
        ("er", ""),
        ("ly", ""),
        ("ing", "e"),
        ("ed", "e"),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)] + repl
            out |= {base, stem(base), base.rstrip("y")}
    return out


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Coverage:
    """The vocabulary of a set of sections (all versions of the pages), for coverage checks."""

    def __init__(self, sections: Iterable[Section], tools: TextTools) -> None:
        self.tools = tools
        parts = []
        for s in sections:
            parts += [s.title, s.text, anchor_words(s.anchor)]
        raw = unicodedata.normalize("NFKC", "\n".join(parts))
        self._text = _SPACES.sub("", tools.normalize(raw))  # Simplified, lower case, no spaces
        words = set(_LATIN_WORD.findall(raw.lower()))
        for term in tools.glossary:  # English names and aliases count as page words
            for name in (term.english, *term.aliases):
                words.update(_LATIN_WORD.findall(name.lower()))
        for others in tools.synonyms.values():
            for other in others:
                words.update(_LATIN_WORD.findall(other.lower()))
        self._latin = words | {stem(w) for w in words}
        self._latin_deletes: dict[str, str] = {}
        for w in words:
            if len(w) >= 5:
                for d in _deletes(w) | {w}:
                    self._latin_deletes.setdefault(d, w)
        self._cjk_near: set[str] = set()  # 3-grams of the page text with one character masked
        for i in range(len(self._text) - 2):
            gram = self._text[i : i + 3]
            if _CJK.fullmatch(gram[0]) and _CJK.fullmatch(gram[2]):
                self._cjk_near.update(gram[:j] + "?" + gram[j + 1 :] for j in range(3))

    def covered(self, term: FocusTerm) -> bool:
        word = term.text
        norm = self.tools.normalize(word)
        if any(self.tools.normalize(said) == norm for said, _ in self.tools.expansions(word)):
            return True  # the whole term is another way of saying a page word (glossary, synonyms)
        if term.latin:
            variants = _variants(word)
            if variants & self._latin or any(self.tools.expansions(v) for v in variants if len(v) > 3):
                return True
            if len(word) >= 5:  # one typo: a deletion, an insertion or a substitution
                return word in self._latin_deletes or any(d in self._latin_deletes for d in _deletes(word))
            return False
        if norm in self._text:
            return True
        if len(norm) >= 3 and self._parts_covered(norm):
            return True  # a compound of page words: 网络安全 = 网络 + 安全
        if len(norm) == 3 and _CJK.search(norm):
            return sum(norm[:j] + "?" + norm[j + 1 :] in self._cjk_near for j in range(3)) >= 1
        return False

    def _parts_covered(self, norm: str) -> bool:
        """Whether jieba's sub-words of a compound cover every character and the pages use each."""
        parts = [w for w in self.tools.tokenizer.cut_for_search(norm, HMM=False) if 2 <= len(w) < len(norm)]
        if not parts or not all(p in self._text for p in parts):
            return False
        seen = set()
        for p in parts:
            at = norm.find(p)
            while at >= 0:
                seen.update(range(at, at + len(p)))
                at = norm.find(p, at + 1)
        return len(seen) == len(norm)

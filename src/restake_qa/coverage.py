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

import opencc

from .analysis import COMMON_CHARACTER_ZIPF, FocusTerm, zipf
from .corpus import Section
from .spelling import Typos
from .text import CJK, TextTools, anchor_words, stem

_LATIN_WORD = re.compile(r"[a-z][a-z0-9]*(?:[.'’+-][a-z0-9]+)*")
_WRITTEN_WORD = re.compile(r"(?<![A-Za-z0-9.'’+-])[A-Za-z]+(?![A-Za-z0-9'’+-])")
_SPACES = re.compile(r"\s+")
#: A stretch the question quotes: 「如何開始」, “…”, "…", '…'.
_QUOTED = re.compile(r"[「『“\"'‘«]([^「」『』“”\"'‘’«»]{2,120})[」』”\"'’»]")
#: A quotation this long (matching form, no spaces) found on the pages is the page's own words.
MIN_QUOTE = 4
#: The other half of a hyphenated word with a page word in it is an everyday prefix or suffix
#: when at least this common (pro-, -wise, -related, -based).
AFFIX_ZIPF = 4.0
#: A name this long that is one typo away from a page word is that word misspelt (EigenLayar).
LONG_NAME = 7


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


class Coverage:
    """The vocabulary of a set of sections (all versions of the pages), for coverage checks."""

    def __init__(self, sections: Iterable[Section], tools: TextTools) -> None:
        self.tools = tools
        parts = []
        for s in sections:
            parts += [s.title, s.text, anchor_words(s.anchor)]
        raw = unicodedata.normalize("NFKC", "\n".join(parts))
        # Simplified, lower case, no spaces — and converted character by character too: the phrase
        # conversion turns the Taiwanese page's 中介軟體 into 中间件, and its reader asks about 「中介」
        by_character = opencc.OpenCC("t2s").convert(raw).lower()
        self._text = _SPACES.sub("", tools.normalize(raw)) + "|" + _SPACES.sub("", by_character)
        words = set(_LATIN_WORD.findall(raw.lower()))
        for term in tools.glossary:  # English names and aliases count as page words
            for name in (term.english, *term.aliases):
                words.update(_LATIN_WORD.findall(name.lower()))
        for others in tools.synonyms.values():
            for other in others:
                words.update(_LATIN_WORD.findall(other.lower()))
        # the page's words and their light inflections both ways: Actively covers "Active"
        self._latin = words | {v for w in words for v in _variants(w)}
        # every other way of saying a page word the glossary and the synonyms file know
        self._forms = {
            tools.normalize(f) for term in tools.glossary for f in (term.term, term.english, *term.aliases) if f
        }
        self._forms |= {tools.normalize(f) for word, others in tools.synonyms.items() for f in (word, *others)}
        self._latin_known = self._latin | self._forms  # (once: a Latin focus term is looked up in both)
        self._typos = Typos((w for w in words if len(w) >= 5), self._latin)  # one typo from a page word
        self._cjk_near: set[str] = set()  # 3-grams of the page text with the middle character masked
        for i in range(len(self._text) - 2):
            gram = self._text[i : i + 3]
            if all(CJK.fullmatch(c) for c in gram):
                self._cjk_near.add(gram[0] + "?" + gram[2])

    def covered(self, term: FocusTerm) -> bool:
        word = term.text
        norm = self.tools.normalize(word)
        if norm in self._forms:
            return True  # the whole term is another way of saying a page word (glossary, synonyms)
        if term.latin:
            variants = _variants(word)
            if variants & self._latin_known:
                return True
            head, dash, label = word.rpartition("-")
            if dash and len(label) <= 2 and _variants(head) & self._latin_known:
                return True  # one of them, labelled: AVS-A, operator-1
            parts = word.split("-")
            unknown = [p for p in parts if not _variants(p) & self._latin_known]
            if len(parts) == 2 and all(parts) and len(unknown) < 2:
                # a page word with an everyday prefix or suffix: pro-restaking, restaking-wise
                if not unknown or zipf(unknown[0], "en") >= AFFIX_ZIPF:
                    return True
            # one typo — a short name must be exact (rsETH is not stETH), and so must a name general
            # English knows (Binance is not "finance"); a long unknown one is misspelt (EigenLayar)
            if len(word) >= 5 and not term.name or (len(word) >= LONG_NAME and term.zipf == 0):
                return self._typos.near(word)
            return False
        if norm in self._text:
            return True
        if len(norm) >= 3 and norm[-1] in "来去" and (norm[:-1] in self._forms or norm[:-1] in self._text):
            return True  # a verb with its direction: 领回来 is 领回 (a way of saying 提款), 取出来 取出
        if len(norm) >= 3 and self._parts_covered(norm):
            return True  # a compound of page words: 网络安全 = 网络 + 安全
        if len(norm) == 3 and all(CJK.fullmatch(c) for c in norm):
            return norm[0] + "?" + norm[2] in self._cjk_near  # one typo in the middle: 中新化 → 中心化
        return self._miscut(norm, term)

    def respell(self, question: str) -> str:
        """``question`` with its English words that general English does not know and that are one
        typo from exactly one page word written as that word ("who is opperator" → "who is
        operator"). Words that may be names are left alone: capitalised ones shorter than
        ``LONG_NAME`` (Stader is not "staker"), as :meth:`covered` leaves them uncovered."""

        def fix(m: re.Match[str]) -> str:
            written = m.group(0)
            word = written.lower()
            short = len(word) < (LONG_NAME if written[0].isupper() else 6)
            if short or not word.isalpha() or word in self._latin_known or zipf(word, "en") > 0:
                return written
            found = self._typos.corrections(word)
            if len(found) != 1:
                return written
            (right,) = found
            return right.capitalize() if written[0].isupper() else right

        return _WRITTEN_WORD.sub(fix, question)

    def quotes_page(self, question: str) -> str:
        """The first stretch ``question`` quotes that is the pages' own words (「如何開始」,
        「這些代幣可以賺取 ETH 質押和再質押獎勵」), or "": such a question asks about the page. One
        English word in quotes is a word, not a quotation ("is 'restaking' on Bittensor the same?")."""
        for m in _QUOTED.finditer(unicodedata.normalize("NFKC", question)):
            quoted = _SPACES.sub("", self.tools.normalize(m.group(1)))
            if not CJK.search(quoted) and " " not in m.group(1).strip():
                continue
            if len(quoted) >= MIN_QUOTE and quoted in self._text:
                return m.group(1)
        return ""

    def _miscut(self, norm: str, term: FocusTerm) -> bool:
        """Whether jieba glued a common character to the end of a page word it cut short:
        「質押品會被銷毀」 cut as 質押 / 品會 — 質押品 is a page word and 會 a common character."""
        if len(norm) < 2 or not all(CJK.fullmatch(c) for c in norm):
            return False
        left, right = self.tools.normalize(term.left), self.tools.normalize(term.right)
        head, last = norm[:-1], norm[-1]
        tail, first = norm[1:], norm[0]
        if zipf(last, "zh") >= COMMON_CHARACTER_ZIPF and len(left + head) >= 3 and (left + head) in self._text:
            return True
        return zipf(first, "zh") >= COMMON_CHARACTER_ZIPF and len(tail + right) >= 3 and (tail + right) in self._text

    def _parts_covered(self, norm: str) -> bool:
        """Whether jieba's sub-words of a compound cover every character and the pages use each."""
        parts = [w for w in self.tools.tokenizer.cut_for_search(norm, HMM=False) if 2 <= len(w) < len(norm)]
        if not parts or not all(p in self._text for p in parts):
            return False
        seen: set[int] = set()
        for p in parts:
            at = norm.find(p)
            while at >= 0:
                seen.update(range(at, at + len(p)))
                at = norm.find(p, at + 1)
        return len(seen) == len(norm)

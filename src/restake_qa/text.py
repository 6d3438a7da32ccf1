"""Language tools shared by chunking, the lexical index and answers.

One :class:`TextTools` holds the configured jieba ``Tokenizer`` (the glossary as user
dictionary), the OpenCC converters and the glossary itself; it is passed to whoever needs
it rather than living in module globals.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
import threading
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jieba
import jieba.posseg
import opencc

from .errors import CorpusError
from .memo import Memo

jieba.setLogLevel(logging.WARNING)

#: Ends a sentence (full-width and ASCII). Other sets below are built from these parts.
STOPS = "。！？!?"
#: Closing quotes and brackets that stay with the sentence before them.
CLOSERS = "」』）)\"'”’"
#: Ends a clause inside a long sentence: a place where a chunk may be cut.
CLAUSE_ENDS = "，、：,:;）)」』—"
#: Ends a line of text as a sentence would (a table row, an alert title): stops, ；, ., ….
LINE_ENDS = STOPS + "；.…"
#: The end of a quotable sentence: stops (with closing quotes), or an English full stop followed
#: by a space and what starts a sentence (not 2.5, ether.fi or "e.g. the").
SENTENCE_END = re.compile(f'[{re.escape(STOPS)}]+[{re.escape(CLOSERS)}]*|(?<=[A-Za-z0-9)"\'”’])[.](?=\\s+[A-Z"“‘(])')

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[a-z0-9]")
_PROTECTED = re.compile(
    r"https?://[^\s\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+|[A-Za-z0-9][A-Za-z0-9'’._%+-]*[A-Za-z0-9%]|[A-Za-z0-9]"
)

# Words that carry no topic: question scaffolding in both scripts and English.
STOPWORDS = frozenset(
    """
    的 了 是 在 和 与 及 或 有 我 我们 你 您 他 他们 她 它 它们 这 那 这个 那个 这些 那些 什么 甚么
    怎么 怎样 如何 吗 呢 吧 啊 呀 嘛 哪 哪些 哪个 为什么 为何 是否 能 能够 可以 会 要 就 都 也 还 又 把
    被 给 让 对 从 到 向 于 以 之 其 而 并 但 如果 因为 所以 一个 一种 一些 些 个 种 么 请问 请 告诉
    说 讲 一下 有没有 是不是 多少 几 吗 么 嗯 喔 哦 跟 与 同 上 中 里 内 时 后 前 等 着 过 地 得 所
    the a an is are was were be been being do does did of to in on for with by as at from that this these
    those it its what which who whom how why when where can could should would will shall may might
    i me my we our you your he she they them their there here and or but if then so than about into
    any some much many more most not no yes please tell explain mean means vs versus even actually really
    basically literally
    """.split()
)


@dataclass(frozen=True)
class Term:
    """A glossary entry: the page's term, its English name, other spellings, an explanation."""

    term: str
    english: str
    aliases: tuple[str, ...]
    explanation: str


def load_glossary(path: Path) -> list[Term]:
    """Read ``glossary.toml``; a missing file is an empty glossary."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: not valid TOML ({exc}); fix the file and retry") from None
    terms = []
    for i, entry in enumerate(data.get("term", [])):
        if not entry.get("term"):
            raise CorpusError(f"{path}: entry {i + 1} has no `term`")
        terms.append(
            Term(
                term=entry["term"],
                english=entry.get("english", ""),
                aliases=tuple(entry.get("aliases", ())),
                explanation=entry.get("explanation", ""),
            )
        )
    return terms


def load_synonyms(path: Path) -> dict[str, tuple[str, ...]]:
    """Read ``synonyms.toml`` (page word → other ways to say it); a missing file is empty."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: not valid TOML ({exc}); fix the file and retry") from None
    words = data.get("words", {})
    out: dict[str, tuple[str, ...]] = {}
    for word, others in words.items():
        if not isinstance(others, list) or not all(isinstance(o, str) and o.strip() for o in others):
            raise CorpusError(f"{path}: `{word}` must map to a list of non-empty strings")
        out[word] = tuple(others)
    return out


#: The files of a corpus folder that configure the text tools (and so the lexical index).
TOOL_FILES = ("glossary.toml", "synonyms.toml")


def tool_files(corpus_dir: Path) -> list[Path]:
    """The files of ``corpus_dir`` that configure the text tools (present or not)."""
    return [corpus_dir / name for name in TOOL_FILES]


def load_text_tools(corpus_dir: Path) -> TextTools:
    """The :class:`TextTools` of a corpus folder (its glossary and synonyms)."""
    glossary, synonyms = tool_files(corpus_dir)
    return TextTools(load_glossary(glossary), load_synonyms(synonyms))


def anchor_words(anchor: str) -> str:
    """The English words of an ethereum.org anchor (anchors are the English headings):
    ``what-are-the-risks-of-restaking`` → ``what are the risks of restaking``."""
    return " ".join(anchor.replace("_", "-").split("-"))


def stem(word: str) -> str:
    """A light English stem, so that "risks", "restaked" and "restaking" meet their headings,
    and "riskier", "risky" meet "risk" (comparatives and -y adjectives lose their ending)."""
    for suffix in ("iest", "ier", "ies"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    if word.endswith("y") and len(word) >= 5 and word[-2] not in "aeiou":
        return word[:-1]
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    else:  # plural abbreviations: LSTs, AVSs
        if word.endswith("s") and len(word) == 4 and word[-2] not in "ui":
            return word[:-1]
    return word[:-1] if word.endswith("e") and len(word) >= 5 else word


def _english_needle(phrase: str) -> str:
    """Text every match of :func:`_english_pattern` contains: the first word of a phrase, or a
    single word without the ending the pattern may change. A quick ``in`` test rules most
    patterns out before the regular expression runs."""
    words = phrase.lower().split()
    if len(words) > 1:
        return words[0]
    return words[0][:-1] if words[0].endswith("e") else words[0]


def _english_pattern(phrase: str) -> re.Pattern[str]:
    """Whole-word match of ``phrase`` whose last word may take a regular ending."""
    words = phrase.lower().split()
    last = re.escape(words[-1])
    if words[-1].endswith("e"):
        last = re.escape(words[-1][:-1]) + "(?:e|es|ed|ing)?"
    elif words[-1][-1:].isalpha():
        last += "(?:s|es|ed|ing)?"
    body = r"\s+".join([*(re.escape(w) for w in words[:-1]), last])
    return re.compile(rf"(?<![a-z0-9]){body}(?![a-z0-9])")


@functools.cache
def _jieba_dictionary() -> tuple[dict[str, int], int]:
    """jieba's default prefix dictionary and its total, loaded once per process (about a second:
    every build and every engine used to load it again). Never changed: each tokenizer gets a copy."""
    base = jieba.Tokenizer()
    base.initialize()
    return base.FREQ, base.total


@functools.cache
def vocabulary() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The names and words of crypto forums jieba's dictionary lacks (``data/vocabulary.toml``),
    as written there: (names, words, English names)."""
    table = tomllib.loads((Path(__file__).parent / "data" / "vocabulary.toml").read_text(encoding="utf-8"))
    return tuple(table.get("names", ())), tuple(table.get("words", ())), tuple(table.get("names_en", ()))


def jieba_tokenizer() -> jieba.Tokenizer:
    """A ready jieba tokenizer of its own (its words can be added to without touching another's),
    made from the process's one loaded dictionary: a copy of a dict, not a second load."""
    freq, total = _jieba_dictionary()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total, tokenizer.initialized = dict(freq), total, True
    return tokenizer


@functools.cache
def _jieba_word_tags() -> dict[str, str]:
    return jieba.posseg.POSTokenizer(jieba.Tokenizer()).word_tag_tab  # (a tagger of its own, dropped)


def jieba_pos_tokenizer(tokenizer: jieba.Tokenizer) -> jieba.posseg.POSTokenizer:
    """jieba's part-of-speech tagger over ``tokenizer``, its word tags read once per process."""
    pos = jieba.posseg.POSTokenizer.__new__(jieba.posseg.POSTokenizer)
    pos.tokenizer, pos.word_tag_tab = tokenizer, dict(_jieba_word_tags())
    return pos


class TextTools:
    """Script conversion, jieba tokenisation and glossary look-ups, configured once."""

    def __init__(self, glossary: list[Term] | None = None, synonyms: dict[str, tuple[str, ...]] | None = None) -> None:
        self.glossary = list(glossary or [])
        #: each glossary term's Chinese aliases (營運者 → 营运者, 运营商 …): what another page version calls it
        self.chinese_aliases = {t.term: tuple(a for a in t.aliases if CJK.search(a)) for t in self.glossary}
        self.synonyms = dict(synonyms or {})
        self._t2s = opencc.OpenCC("tw2sp")
        self._s2t = opencc.OpenCC("s2twp")
        self._lock = threading.Lock()  # OpenCC converters are not documented as thread-safe
        # pure functions of a text, called for the same texts by every question (titles, units,
        # the page's words): computed once each (see memo.py)
        self._simplified: Memo[str] = Memo()
        self._traditional: Memo[str] = Memo()
        self._lexical: Memo[tuple[str, ...]] = Memo()
        self._expansions: Memo[tuple[tuple[str, str], ...]] = Memo(4096)
        self.tokenizer = jieba_tokenizer()
        names, words, names_en = vocabulary()
        #: Chinese names jieba does not know (幣安, 小狐狸) and English ones written in lower case
        #: (kraken, airdrop), normalised: a focus term that is one is a name
        self.names = frozenset(self.normalize(n) for n in (*names, *names_en))
        for word in (*names, *words):
            self.tokenizer.add_word(self.normalize(word), freq=20000)
        for term in self.glossary:
            for word in {term.term, *term.aliases}:
                norm = self.normalize(word)
                if CJK.search(norm):
                    self.tokenizer.add_word(norm, freq=200000)
        # Other ways of saying a page word → the page word (normalised): glossary aliases and
        # English names, and the synonyms file. English phrases match as whole words; Chinese
        # ones anywhere in the normalised question.
        pairs: list[tuple[str, str]] = []
        for term in self.glossary:
            # longest first, so that 解绑期 is found before 解绑 (and in the same order every run)
            pairs += [
                (alias, term.term) for alias in sorted({*term.aliases, term.english} - {""}, key=lambda a: (-len(a), a))
            ]
        for word, others in self.synonyms.items():
            pairs += [(other, word) for other in sorted(others, key=lambda o: (-len(o), o))]
        self._english: list[tuple[str, re.Pattern[str], str]] = []
        self._chinese: list[tuple[str, str]] = []
        for other, word in pairs:
            if CJK.search(other):
                self._chinese.append((self.normalize(other), word))
            else:
                self._english.append((_english_needle(other), _english_pattern(other), word))

    def unremembered(self) -> TextTools:
        """The same tools (dictionary, converters, glossary shared) remembering nothing: for a
        build, whose texts are each met once, so that they do not fill the memos the questions
        use (a reindex of a page of new texts would otherwise grow a serving process by the
        memos' whole capacity)."""
        view = copy.copy(self)
        view._simplified, view._traditional, view._lexical, view._expansions = Memo(0), Memo(0), Memo(0), Memo(0)
        return view

    # scripts -----------------------------------------------------------------------------
    def to_simplified(self, text: str) -> str:
        return self._simplified.get(text, lambda: self._convert(self._t2s, text))

    def to_traditional(self, text: str) -> str:
        return self._traditional.get(text, lambda: self._convert(self._s2t, text))

    def _convert(self, converter: opencc.OpenCC, text: str) -> str:
        with self._lock:
            return str(converter.convert(text))

    def normalize(self, text: str) -> str:
        """The form lexical matching works on: Simplified script, lower case."""
        return self.to_simplified(text).lower()

    # tokens ------------------------------------------------------------------------------
    def segments(self, text: str) -> list[tuple[str, int, int]]:
        """jieba words of ``text`` with their character offsets in ``text``.

        Segmentation runs on the Simplified form (jieba's dictionary is Simplified) when the
        conversion keeps the length, so offsets map one to one; URLs, Latin words and numbers
        are always one segment.
        """
        simplified = self.to_simplified(text)
        basis = simplified if len(simplified) == len(text) else text
        words = [(w, s, e) for w, s, e in self.tokenizer.tokenize(basis, HMM=True)]
        protected = [(m.start(), m.end()) for m in _PROTECTED.finditer(text)]
        if not protected:
            return [(text[s:e], s, e) for _, s, e in words]
        # Merge jieba words that fall inside one protected span (a URL, 2.5, e-mail…).
        out: list[tuple[str, int, int]] = []
        pi = 0
        for _, s, e in words:
            while pi < len(protected) and protected[pi][1] <= s:
                pi += 1
            if pi < len(protected) and protected[pi][0] < e and s < protected[pi][1]:
                ps, pe = protected[pi]
                start, end = min(s, ps), max(e, pe)
                if out and out[-1][2] > start:
                    start = min(out[-1][1], start)
                    out.pop()
                out.append((text[start:end], start, end))
            else:
                if out and out[-1][2] > s:
                    continue
                out.append((text[s:e], s, e))
        return out

    def count_tokens(self, text: str) -> int:
        """Number of non-space jieba words: the chunker's budget unit."""
        return sum(1 for w, _, _ in self.segments(text) if w.strip())

    def lexical_tokens(self, text: str) -> list[str]:
        """Tokens for BM25: normalised jieba words in search mode (a long word also yields the
        known words inside it: 哪些项目 → 哪些, 项目, 哪些项目) minus stop words and punctuation,
        Latin words lightly stemmed, plus character bigrams of Chinese words jieba does not know."""
        return list(self._lexical.get(text, lambda: tuple(self._lexical_tokens(text))))

    def _lexical_tokens(self, text: str) -> list[str]:
        norm = self.normalize(text)
        out = []
        for word in self.tokenizer.cut_for_search(norm, HMM=True):
            word = word.strip()
            if not word or word in STOPWORDS:
                continue
            if CJK.search(word):
                out.append(word)
                if len(word) > 2 and word not in self.tokenizer.FREQ:
                    out.extend(word[i : i + 2] for i in range(len(word) - 1))
            elif _LATIN.search(word):
                out.append(stem(word))
        return out

    def expansions(self, question: str) -> list[tuple[str, str]]:
        """``(what the question says, the page's word for it)`` pairs: English names and
        aliases of glossary terms, and the synonyms file."""
        return list(self._expansions.get(question, lambda: tuple(self._expansions_of(question))))

    def _expansions_of(self, question: str) -> list[tuple[str, str]]:
        lowered = question.lower()
        norm = self.normalize(question)
        found: dict[str, str] = {}
        for needle, pattern, word in self._english:
            if word not in found and needle in lowered and (m := pattern.search(lowered)):
                found[word] = m.group(0)
        for other, word in self._chinese:
            if word not in found and other in norm and self.normalize(word) not in norm:
                found[word] = other
        return [(said, word) for word, said in found.items()]

    def expand_query(self, question: str) -> list[str]:
        """The page's words (as the page writes them) for what ``question`` says in other words."""
        return [word for _, word in self.expansions(question)]

    def query_tokens(self, question: str, words: list[str] | None = None) -> list[str]:
        """Lexical tokens of a question plus those of the page's ``words`` for it (default: all
        its expansions), without repeats."""
        tokens = self.lexical_tokens(question)
        for word in self.expand_query(question) if words is None else words:
            tokens += self.lexical_tokens(word)
        return list(dict.fromkeys(tokens))

    def heading_tokens(self, title: str, anchor: str) -> list[str]:
        """What a section's heading says: the title's tokens and the English words of its
        anchor (ethereum.org anchors are the English headings, e.g. what-are-the-risks-of-restaking)."""
        return list(dict.fromkeys(self.lexical_tokens(title) + self.lexical_tokens(anchor_words(anchor))))

    def glossary_terms_in(self, text: str) -> list[Term]:
        """Glossary entries whose term or an alias occurs in ``text`` (either script)."""
        norm = self.normalize(text)
        hits = []
        for term in self.glossary:
            names = [term.term, *term.aliases]
            if any(self.normalize(n) in norm for n in names if CJK.search(n) or len(n) > 2):
                hits.append(term)
        return hits


def script_language(text: str, tools: TextTools) -> str | None:
    """'zh-tw', 'zh-cn' or 'en' for a question, by script; None for Chinese whose characters
    are the same in both scripts (「那收益大概能有多少啊？」)."""
    cjk = CJK.findall(text)
    if not cjk:
        return "en"
    han = "".join(cjk)
    changed_if_simplified = sum(a != b for a, b in zip(han, tools.to_simplified(han)))
    changed_if_traditional = sum(a != b for a, b in zip(han, tools.to_traditional(han)))
    if changed_if_traditional == changed_if_simplified:
        return None
    return "zh-cn" if changed_if_traditional > changed_if_simplified else "zh-tw"


def detect_language(text: str, tools: TextTools, fallback: str | None = None) -> str:
    """'zh-tw', 'zh-cn' or 'en' for a question, by script; Chinese written alike in both
    scripts is in ``fallback``'s script when that is a Chinese one (the asker's: the script of
    the conversation so far, or of the interface), else Traditional, the page's own."""
    language = script_language(text, tools)
    if language is None:
        return fallback if fallback in ("zh-tw", "zh-cn") else "zh-tw"
    return language


def conversation_language(history: Sequence[Mapping[str, str]], tools: TextTools) -> str | None:
    """The script of the asker's latest Chinese question whose script shows (None if none):
    what a follow-up written alike in both scripts is answered in."""
    for turn in reversed(history):
        language = script_language(turn.get("question") or "", tools)
        if language in ("zh-tw", "zh-cn"):
            return language
    return None

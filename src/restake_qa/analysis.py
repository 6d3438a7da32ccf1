"""Question analysis: what a question asks for and what it asks about, computed once and read
by retrieval, refusal and answer selection.

* the question normalised (full-width Latin and digits to ASCII, spaces collapsed), its
  language and script;
* its **intent** — definition, list, yes_no, comparison, how_to, reason, quantity, who,
  consequence (or ``other``) — from one table of patterns per language (``data/intents.toml``,
  compiled by :mod:`restake_qa.question_patterns`);
* its **focus terms**: the words of its question clauses that carry information (glossary
  terms, names, English words inside Chinese, informative nouns), each with its background
  frequency (wordfreq's Zipf scale: 7 for "the"/「的」, under 3 for rare words; 0 = unknown);
* whether it can be answered from a static page at all: not a question (markup, template
  syntax, instructions aimed at the assistant, gibberish), a request for live data (today's
  price, current yields, news) or for a prediction or advice (``data/not_answerable.toml``).

Whether the corpus covers each focus term is decided by :mod:`restake_qa.coverage`, which
knows the indexed pages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from . import clauses as clause_rules
from .memo import Memo
from .question_patterns import QuestionPatterns
from .spelling import misspelt_common_word
from .text import CJK, TextTools, detect_language, jieba_pos_tokenizer

_LATIN_WORD = re.compile(r"(?<![a-z0-9])[a-z][a-z0-9]*(?:[.'’+-][a-z0-9]+)*", re.IGNORECASE)
#: English words that are not nouns by their ending (ideally, swapped, coughing up): a Latin word has no
#: part-of-speech tag, so every other one counts as a noun.
_NOT_A_NOUN = re.compile(r"[a-z]{3,}(ly|ed|ing)$")
#: A Chinese "word" a passive or disposal marker ends is jieba cutting a phrase wrong (出包被罰沒 →
#: 出 / 包被 / 罰沒): no noun ends in 被, 把 or 給.
_MISCUT = re.compile(r"^[\u4e00-\u9fff]+[被把给]$")
#: A demonstrative and the classifier after it (这条, 那个, 每间): the classifier is no part of the noun.
_CLASSIFIED = re.compile(r"[这那哪每][个条张间种项位家篇支只台件笔份]")
#: A Chinese character at least this frequent (Zipf) is a function character (的, 會, 都, 還): glued
#: to a page word or run together with others by jieba, it makes no noun (also coverage.py).
COMMON_CHARACTER_ZIPF = 5.5
_POSSESSIVE = re.compile(r"['’]s$")
#: A Chinese pronoun: in the asking clause it points at what the context named (「手上有些 ETC，它也
#: 可以拿去 restake 嗎？」), and so does "which one" ("Quidax or Binance P2P - which one…?"). English
#: "it" too often points at the asker's own situation ("It become how much?"); "is that a…" points
#: at what was just named ("StakeStone - is that an LRT?"), as does 「那是…嗎」 after a name.
_POINTS_BACK = re.compile(
    r"它|^那(是不是|算不算|算|是)|\bwhich (one|ones|of (them|these|those|the two))\b|\b(is|isn't|are|aren't) (that|this|those|these) (a|an|one|some|just|really|actually)\b"
    r"|\b(do|does|did|will|would|can|could) (they|he|she)\b|哪(个|一个|家|一家|款|种|一种|支|只)"
)
#: A clause that asks without saying what for: a question mark, a particle, "what is it called"
#: (「那個角色叫什麼」 — a name, the page's or a section's, not a definition).
_QUESTION_END = re.compile(r"[?？]|[嗎吗呢嘛吧]\s*$|叫做?(什[么麼]|甚[么麼]|啥)\s*$")
#: An asking clause that only asks to confirm what was said before it (「是真的嗎」, "true?").
_CONFIRMS = re.compile(
    r"真的|真假|[对對]吗|[对對]不[对對]|是吗|属实|靠谱|\btrue\b|\bright\b|\bconfirm|\blegit\b|\breal\b|\baccurate\b|\bcorrect\b"
)
#: An abbreviation the question makes up and explains: "EL = EigenLayer", "let's call it 'the 7MV'",
#: 「以下簡稱 TPR」 (matched in the lower-cased Simplified form).
_DEFINED = re.compile(
    r"\b(?P<a>[a-z][a-z0-9]{0,7})\s*(?:=|＝|:=)\s*[^\s=?？]"
    r"|(?:简称|称为|叫做|\bdefine)\s*[「“\"']?(?P<b>[a-z0-9]{1,8})\b"
    r"|\bcall(?:ed|ing)?\b[^.?!「“\"]{0,40}[「“\"'](?:the )?(?P<c>[a-z0-9]{1,8})\b"
)
#: Tagalog's verb prefixes before an English verb (Taglish 「nag-restake」, 「mag-setup」).
_TAGALOG_PREFIX = re.compile(r"^(?:nag|mag|pag|ipag|mang|maki|naka)-(?=[a-z]{3})")
#: Languages whose everyday words askers mix into English (Taglish 「po」, Malaysian 「boleh」).
MIXED_IN = ("fil", "ms", "id")
_INTERROGATIVE = re.compile(r"啥|什[么麽]|甚[么麽]|多少|几|哪|谁|\bhow (much|many)\b|\bwhat\b")
_SPACES = re.compile(r"[^\S\n]+")
_LINE_BREAKS = re.compile(r"\s*\n\s*")


#: Part-of-speech tags (jieba's) of words that can name what a question is about: nouns,
#: names, abbreviations, and words jieba does not know (idioms and set phrases such as 說白了
#: are how people talk, not what they ask about).
NOUN_TAGS = frozenset({"n", "nr", "nrt", "nrfg", "ns", "nt", "nz", "ng", "j", "x", "eng", "vn", "an"})


#: Tags of words that carry no content of their own: particles (呢, 欸), interjections,
#: auxiliaries, prepositions, conjunctions, pronouns, adverbs, numerals, classifiers, time and
#: place words.
FUNCTION_TAGS = frozenset(
    {
        "y",
        "e",
        "o",
        "u",
        "uj",
        "ul",
        "uz",
        "ug",
        "uv",
        "ud",
        "p",
        "c",
        "r",
        "rr",
        "rz",
        "d",
        "m",
        "mq",
        "q",
        "f",
        "t",
        "tg",
        "zg",
    }
)


@dataclass(frozen=True)
class FocusTerm:
    """A word of the question that says what it is about."""

    text: str  # normalised: Simplified script, lower case
    zipf: float  # background frequency (wordfreq Zipf); 0 for a word it does not know
    latin: bool  # a Latin-script word (English, a name, an abbreviation)
    in_question: bool  # in a clause that asks (not in the context around it)
    name: bool = False  # written as a name: Binance, EigenLayer, AVS (not RISK, not "The")
    noun: bool = True  # a noun-like word (jieba's tag; every Latin word counts)
    written: str = ""  # as the question wrote it (its script and case)
    tag: str = ""  # jieba's part of speech ("eng" for a Latin word)
    left: str = ""  # the two characters of the question before it, and after it (matching form)
    right: str = ""
    likened: bool = False  # what the subject is likened to (「跟交易所那種一樣嗎」, "like an SLA")
    sentence: int = 0  # which sentence of the question it is in (0 first)
    label: bool = False  # in a label before a colon (「DAO 國庫兩個方案：…」)

    @property
    def content(self) -> bool:
        """A content word (not a particle, interjection, pronoun, adverb, numeral…)."""
        return self.tag not in FUNCTION_TAGS


@dataclass(frozen=True)
class QuestionAnalysis:
    question: str  # as asked
    text: str  # normalised: NFKC (full-width Latin → ASCII), spaces collapsed
    language: str  # zh-tw, zh-cn or en
    intent: str  # one of INTENTS, or "other"
    intent_rule: str  # the pattern that decided the intent ("" for other)
    focus: tuple[FocusTerm, ...]
    not_a_question: str  # "" or the kind: markup, template, injection, gibberish
    live_data: str  # "" or the matched live marker and quantity
    prediction: str  # "" or the matched pattern
    legal: str = ""  # "" or the matched pattern: a legal or regulatory question
    asking: str = ""  # the clauses that ask, as written ("" when every clause asks)
    implied: tuple[str, ...] = ()  # page words the way of asking implies (an ETH amount → 最低)
    audience: tuple[str, ...] = ()  # header words of the steps column for who asks (新手 → 初學者)
    first_done: tuple[str, ...] = ()  # header words of the steps columns whose first step the asker has done
    resources: bool = False  # asks for something to read or watch (an article, a video, a dashboard)
    media: bool = False  # …and about one of the page's videos or articles (its guest, author, source)
    points_back: bool = False  # a pronoun in the asking clause (它) points at the names said before it
    asking_sentences: tuple[int, ...] = ()  # the sentences (0 first) that hold an asking clause
    question_marked: tuple[int, ...] = ()  # …and those a question mark ends

    @property
    def unanswerable(self) -> str:
        """Why no page could answer this ("" if a page could): the first reason that applies."""
        if self.not_a_question:
            return "not_a_question"
        if self.live_data:
            return "live_data"
        if self.prediction:
            return "prediction"
        if self.legal:
            return "legal"
        return ""


def normalize_question(text: str) -> str:
    """Full-width Latin letters, digits and punctuation to ASCII (ＲＩＳＫ → RISK), spaces
    collapsed — a line break stays one (a ticket's 「問題：…」 and 「預期：…」 lines are apart). CJK
    punctuation such as 。and 「」 is kept (NFKC leaves it)."""
    text = _LINE_BREAKS.sub("\n", unicodedata.normalize("NFKC", text).strip())
    return _SPACES.sub(" ", text)


@lru_cache(maxsize=65536)
def zipf(word: str, language: str) -> float:
    """wordfreq's Zipf frequency of ``word`` in general ``language`` ("zh" or "en")."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, language))


# analysis -------------------------------------------------------------------------------------
class QuestionAnalyzer:
    """Analyses questions with one configured :class:`TextTools` and pattern tables."""

    def __init__(self, tools: TextTools, patterns: QuestionPatterns | None = None) -> None:
        self.tools = tools
        self.patterns = patterns or QuestionPatterns(tools)
        self._pos = jieba_pos_tokenizer(tools.tokenizer)
        # an analysis is a pure function of the text: section titles (analysed for every
        # answer) and repeated questions are analysed once
        self._memo: Memo[QuestionAnalysis] = Memo(4096)

    def analyze(self, question: str) -> QuestionAnalysis:
        return self._memo.get(question, lambda: self._analyze(question))

    def _analyze(self, question: str) -> QuestionAnalysis:
        text = self.patterns.respell(normalize_question(question))
        language = detect_language(text, self.tools) if text else "zh-tw"
        # one matching form: Simplified script, lower case (patterns were converted alike)
        norm = self.tools.to_simplified(text).lower()
        family = "en" if language == "en" else "zh"
        # clauses of the matching form, with the same stretch of the original (same offsets:
        # NFKC'd text and its Simplified form have the same length) to see capitals
        pairs = clause_rules.split(norm, text if len(text) == len(norm) else norm)
        clauses = [c for c, _ in pairs]
        intent, rule = self.patterns.intent_of(norm, family)
        sentence_of, separators = clause_rules.sentences(norm, clauses)
        labels = clause_rules.labels(separators)
        asking = self._asking(clauses, sentence_of, separators, labels, family) or clauses
        focus = tuple(self._focus(pairs, set(asking), family, sentence_of, labels))
        # 「聽說 EigenLayer 最近被駭了，是真的嗎？」: the asking clause only asks for confirmation,
        # what it confirms is said before it
        # (「最近看到新聞說再質押很火，它到底是什麼？」 asks what the subject is, not about the news)
        defines = intent == "definition" and not any(_CONFIRMS.search(c) for c in asking)
        live_clauses = asking if any(t.in_question and t.content for t in focus) or defines else clauses
        # …and a clause holding a question word asks too (「今天 ETH 啥价格，现在上车还来得及吗」)
        live_clauses = [c for c in clauses if c in live_clauses or _INTERROGATIVE.search(c)]
        return QuestionAnalysis(
            question=question,
            text=text,
            language=language,
            intent=intent,
            intent_rule=rule,
            focus=focus,
            not_a_question=self._noise(text, norm),
            live_data=self._live(live_clauses, family)
            or next((p.pattern for p in self.patterns.rumours if p.search(norm)), ""),
            prediction=next((p.pattern for c in asking for p in self.patterns.prediction[family] if p.search(c)), ""),
            legal=next((p.pattern for c in asking for p in self.patterns.legal[family] if p.search(c)), ""),
            asking="，".join(o for c, o in pairs if c in asking) if len(asking) < len(clauses) else "",
            implied=tuple(
                dict.fromkeys(
                    [*self.patterns.words_of(self.patterns.implied, norm), *self.patterns.intent_words.get(intent, ())]
                )
            ),
            audience=self.patterns.audience_of(norm, comparison=intent == "comparison"),
            first_done=self.patterns.first_step_done(norm),
            resources=(resources := any(p.search(norm) for p in self.patterns.resources)),
            media=resources and any(p.search(norm) for p in self.patterns.media),
            points_back=len(asking) < len(clauses) and any(_POINTS_BACK.search(c) for c in asking),
            asking_sentences=tuple(sorted({sentence_of[k] for k, c in enumerate(clauses) if c in asking})),
            question_marked=tuple(
                sorted({sentence_of[k] for k, sep in enumerate(separators) if re.search("[?？]", sep)})
            ),
        )

    def _asking(
        self, clauses: list[str], sentence_of: list[int], separators: list[str], labels: list[bool], family: str
    ) -> list[str]:
        """The clauses that ask: those ending in a question particle or matching an intent
        pattern; in a sentence with none, every clause of it when a question mark ends it
        (「Pectra 升級上線之後，再質押有什麼變化？」 asks about Pectra too) — except a label before a
        colon (「記者核稿：」), which says what follows."""
        out: list[str] = []
        sentences: dict[int, list[int]] = {}
        for k, number in enumerate(sentence_of):
            sentences.setdefault(number, []).append(k)
        for members in sentences.values():
            asked = [clauses[k] for k in members if self._asks(clauses[k], family)]
            ends_asking = re.search(r"[?？]", separators[members[-1]])
            out += asked or ([clauses[k] for k in members if not labels[k]] if ends_asking else [])
        return out

    def _asks(self, clause: str, family: str) -> bool:
        return bool(_QUESTION_END.search(clause)) or any(r.pattern.search(clause) for r in self.patterns.rules[family])

    def _live(self, clauses: list[str], family: str) -> str:
        for clause in clauses:
            for families in ({family, "zh", "en"} if family == "zh" else {"en"},):
                for fam in families:
                    marker = next((m for m in self.patterns.live_markers[fam] if m.search(clause)), None)
                    quantity = next((q for q in self.patterns.live_quantities[fam] if q.search(clause)), None)
                    if marker and quantity:
                        return f"{marker.pattern} + {quantity.pattern}"
        return ""

    def _noise(self, text: str, norm: str) -> str:
        for kind, rules in self.patterns.noise.items():
            if any(r.search(norm) or r.search(text.lower()) for r in rules):
                return kind
        letters = [w for w in _LATIN_WORD.findall(norm) if len(w) > 1]
        if not CJK.search(norm) and not any(zipf(w, "en") >= 3.0 or self._glossary_word(w) for w in letters):
            return "gibberish"
        return ""

    def _glossary_word(self, word: str) -> bool:
        return bool(self.tools.expansions(word)) or any(
            word == t.term.lower() or word in (a.lower() for a in t.aliases) for t in self.tools.glossary
        )

    def _focus(
        self, clauses: list[tuple[str, str]], asking: set[str], family: str, sentence_of: list[int], labels: list[bool]
    ) -> list[FocusTerm]:
        """Informative words of the clauses, in order, without repeats; Chinese words as jieba
        cuts them (the glossary is its user dictionary), Latin words whole."""
        out: dict[str, FocusTerm] = {}
        capitals = [c.isupper() for _, original in clauses for c in original if c.isascii() and c.isalpha()]
        shouting = len(capitals) >= 12 and sum(capitals) > 0.7 * len(capitals)  # "WHO DECIDES HOW MUCH…"
        # abbreviations the question makes up and explains ("EL = EigenLayer", 「簡稱 TPR」)
        defined = {m.group("a") or m.group("b") or m.group("c") for c, _ in clauses for m in _DEFINED.finditer(c)}
        for k, (clause, original) in enumerate(clauses):
            spans = self._pattern_spans(clause, family)
            likened = [m.span("other") for p in self.patterns.likeness for m in p.finditer(clause)]
            for word, start, tag in self._words(clause):
                if any(a <= start < b for a, b in spans):
                    continue  # question scaffolding: 是什麼, 多少, how much…
                # what the subject is likened to is said, not asked (「跟交易所那種一樣嗎」)
                is_likened = any(a <= start < b for a, b in likened)
                in_question = clause in asking and not is_likened
                latin = not CJK.search(word)
                if not latin and (_CLASSIFIED.match(clause[max(0, start - 1) : start + 1]) or word[0] == "个"):
                    # 这 / 条路, 掉 / 个线: jieba glued the classifier (after a demonstrative, or 个
                    # anywhere) to the noun
                    word, start = word[1:], start + 1
                    if len(word) < 2:
                        continue
                if not latin and len(word) >= 2 and original[start] in self.patterns.filler_characters_written:
                    word, start = word[1:], start + 1  # 係扣: jieba glued a Cantonese 係 to the next word
                    if len(word) < 2:
                        continue
                if latin and (tagalog := _TAGALOG_PREFIX.match(word)):
                    word, start = word[tagalog.end() :], start + tagalog.end()  # nag-restake: restake
                if latin and (len(word) < 2 or not _LATIN_WORD.fullmatch(word) or word in self.patterns.fillers):
                    continue
                if latin and any(d == word or d.endswith(word) for d in defined):
                    continue
                z = zipf(word, "en" if latin else "zh")
                if latin and z < 3.0 and original[start : start + len(word)].islower() and misspelt_common_word(word):
                    continue  # wich, waht: an everyday word misspelt
                if (
                    latin
                    and family == "en"
                    and z < 4.5
                    and not original[start : start + len(word)].isupper()  # MAS, Singapore's regulator
                    and max(zipf(word, m) for m in MIXED_IN) >= max(4.5, z + 1.5)
                ):
                    continue  # po, naman, boleh: Taglish, Malaysian and Indonesian English's everyday words
                if (latin and z >= 5.5) or (not latin and (z >= 5.8 or (len(word) == 1 and z >= 4.0))):
                    continue  # function words: the, is, 的, 是, 我
                if not latin and tag not in NOUN_TAGS and z >= 4.0 and word not in self.tools.names:
                    continue  # common verbs and adverbs say how, not what: 請問, 到底, 一下, 直接
                if not latin and (
                    word in self.patterns.fillers
                    or _MISCUT.search(word)
                    # 會差, 條鏈: a word jieba made up (or barely knows) that starts with a function
                    # character is a phrase cut wrong (會 / 差在哪), not a noun
                    or (self.tools.tokenizer.FREQ.get(word, 0) < 10 and zipf(word[0], "zh") >= 5.3)
                    or set(word) <= self.patterns.filler_characters
                    # 都还没, 问下我: the commonest characters run together are function words
                    or (len(word) >= 3 and all(zipf(c, "zh") >= COMMON_CHARACTER_ZIPF for c in word))
                ):
                    continue
                written = original[start : start + len(word)]
                if latin:
                    # a capital names something, except an English sentence's first word
                    sentence_start = family == "en" and start == 0 and written[1:] == written[1:].lower()
                    capital = written != written.lower() and not sentence_start
                    # RISK is emphasis; AVS, LST are names — and in Chinese so is a capitalised word
                    # that is not plain English (「TON 链上」) or is three letters or fewer (「ETC」)
                    # (a three-letter word in capitals among lower-case ones is a ticker, DOT, unless
                    # everyday, BIG; in a message written all in capitals nothing is)
                    shouted = shouting or (
                        written.isupper()
                        and (
                            z >= 4.0 and (len(written) > 3 or z >= 5.0)
                            if family == "en"
                            else (z >= 4.5 and len(written) > 3)
                        )
                    )
                    name = (capital and not shouted) or any(c.isdigit() for c in word) or word in self.tools.names
                else:
                    # jieba's name tags mark common words too (东西, 普通): rarity decides, unless
                    # the word is a name of the vocabulary (币安, 小狐狸)
                    name = word in self.tools.names
                previous = out.get(word)
                if previous is None or (in_question and not previous.in_question):
                    out[word] = FocusTerm(
                        word,
                        z,
                        latin,
                        in_question,
                        name=name,
                        noun=(not _NOT_A_NOUN.search(word) or name) if latin else (tag in NOUN_TAGS or name),
                        written=written,
                        tag=tag,
                        left=clause[max(0, start - 2) : start],
                        right=clause[start + len(word) : start + len(word) + 2],
                        likened=is_likened,
                        sentence=sentence_of[k],
                        label=labels[k],
                    )
        return list(out.values())

    def _words(self, clause: str) -> list[tuple[str, int, str]]:
        """``(word, start, part-of-speech tag)`` of a clause: Latin words whole (don't, ether.fi),
        Chinese words as jieba cuts them (the glossary is its user dictionary)."""
        # a possessive is its noun (vitalik's → vitalik)
        words = [(_POSSESSIVE.sub("", m.group(0)), m.start(), "eng") for m in _LATIN_WORD.finditer(clause)]
        latin = {i for m in _LATIN_WORD.finditer(clause) for i in range(m.start(), m.end())}
        start = 0
        for pair in self._pos.cut(clause, HMM=True):
            word, tag = pair.word, pair.flag
            at = clause.find(word, start)
            at = start if at < 0 else at
            start = at + len(word)
            word = word.strip()
            if not word or not (CJK.search(word) or word[0].isalnum()) or at in latin:
                continue
            if re.fullmatch(r"[\d.%]+", word):
                continue
            words.append((word, at, tag))
        return sorted(words, key=lambda w: w[1])

    def _pattern_spans(self, clause: str, family: str) -> list[tuple[int, int]]:
        spans = []
        for rule in self.patterns.rules[family]:
            if "." not in rule.source:  # a wildcard pattern's match may hold the subject itself
                # a match that is a page word by another name ("minimum" → 最低) is asked about too
                spans += [m.span() for m in rule.pattern.finditer(clause) if not self._glossary_word(m.group().strip())]
        return spans

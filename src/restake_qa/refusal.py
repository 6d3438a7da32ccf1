"""Whether the page answers a question at all, and if not, why — with the evidence.

In order, a question is refused when:

1. it is not a question (markup, template syntax, instructions aimed at the assistant,
   gibberish) — ``not_a_question``;
2. it asks for live data (today's price, current yields, live counts, news) — ``live_data``;
3. it asks for a prediction or investment advice — ``prediction``;
4. a focus term of its question clauses is informative and the pages never use it (in any
   version, script, synonym or stem) — ``not_covered``. A name, or a Chinese noun rarer than
   ``focus_strict_zipf`` in general language, is enough on its own; a commoner noun (below
   ``focus_soft_zipf``) only when the question also matches the page weakly;
5. it matches the page too weakly: the linear ``refusal_rule`` over similarities sums below 0
   — ``no_match`` — unless the question's informative focus terms are all covered; far below 0
   (``FAR_BELOW``), whatever it covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .analysis import FocusTerm, QuestionAnalysis
from .config import Settings
from .coverage import Coverage

#: A question asking what the page itself says (「頁面上怎麼定性的」, "per the page"): an everyday
#: word the pages never use (年份, 用語, a flowchart) is how it asks, not a subject they lack; only
#: names and words general language does not know still refuse it.
ABOUT_THE_PAGE = re.compile(
    r"頁面|页面|這頁|这页|本頁|本页|網頁|网页|官網|官网|ethereum\.org|\b(the|this) page\b|\bper the page\b",
    re.IGNORECASE,
)
REASONS = ("not_a_question", "live_data", "prediction", "legal", "not_covered", "no_match")
#: Words commoner than this (Zipf) say nothing against the page, even when it never uses them.
WEAK_ZIPF = 5.0
#: A question the similarity rule puts this far below 0 is about something else, whatever everyday
#: words of the pages it uses ("WHO WON THE KOREAN SERIES … IN HOW MANY GAMES"; on the dev sets
#: no in-scope question falls below -4.3).
FAR_BELOW = -6.0


@dataclass(frozen=True)
class RefusalDecision:
    reason: str  # one of REASONS, or "" when the question is answered
    uncovered: tuple[str, ...]  # focus terms the pages never use (as the question wrote them)
    covered: tuple[str, ...]

    @property
    def refused(self) -> bool:
        return bool(self.reason)


def strictness(term: FocusTerm, settings: Settings) -> str:
    """How much an unused focus term says against the page: ``strict`` (a name, an unknown or
    rare word: refuse on its own), ``soft`` (refuse if the similarity is also weak), ``weak``
    (only counts against a question that matches nothing) or ``none``."""
    if term.name or term.zipf == 0:
        return "strict"
    rare = settings.focus_strict_zipf_latin if term.latin else settings.focus_strict_zipf
    if term.zipf < rare:
        return "strict"
    if term.zipf < (4.0 if term.latin else settings.focus_soft_zipf):
        return "soft"
    return "weak" if term.zipf < WEAK_ZIPF else "none"


def decide(
    analysis: QuestionAnalysis, coverage: Coverage, confidence: float, settings: Settings, word_coverage: float = 1.0
) -> RefusalDecision:
    """The refusal decision for an analysed question whose similarity rule gave ``confidence``
    (``word_coverage``: the IDF-weighted share of its words that the pages use at all)."""
    covered = [t for t in analysis.focus if coverage.covered(t)]
    # any word the pages never use counts against a question that matches nothing; only nouns
    # (and names) can say on their own that the question is about something else
    unused = [t for t in analysis.focus if t not in covered and strictness(t, settings) != "none"]
    uncovered = [t for t in unused if t.noun]
    known = tuple(t.written or t.text for t in covered)
    reason = analysis.unanswerable
    if analysis.not_a_question == "gibberish" and covered:
        reason = ""  # no word of general English, but a word of the pages ("eigenpods?")
    if reason:
        return RefusalDecision(reason, tuple(t.written or t.text for t in uncovered), known)
    if coverage.quotes_page(analysis.text):
        return RefusalDecision("", tuple(t.written or t.text for t in uncovered), known)  # it quotes the page
    asked = [t for t in uncovered if t.in_question]
    # names said around the asking clause, when it asks about them: it points back (「手上有些 ETC，
    # 它也可以拿去 restake 嗎？」), or it names nothing of the pages itself — then the names of its
    # own sentence (「OKX 跟 Coinbase 的…，哪家比較好？」), or of every sentence before it when it
    # says nothing itself ("…move to Seattle… What would you do?"); not what the subject is likened
    # to ("like an SLA?"), nor a label before a colon (「DAO 國庫兩個方案：…」), nor what a later
    # sentence adds ("…what is different? In Korea many people say…")
    near: set[int] = set()
    if analysis.points_back:
        near = {t.sentence for t in analysis.focus}
    elif not any(t.in_question and t.content for t in covered):
        near = set(analysis.asking_sentences)
        if near and not any(t.in_question and t.noun for t in analysis.focus):
            near |= set(range(min(near)))
    else:
        # a question a question mark ends, taken on its own: 「派網的理財，年化寫 5%，這數字靠譜嗎？提前
        # 贖回要扣多少」 asks about 派網's figure although its second question names a page word
        near = {
            n
            for n in set(analysis.asking_sentences) & set(analysis.question_marked)
            if not any(t.in_question and t.content and t.sentence == n for t in covered)
        }
    asked += [
        t for t in uncovered if not t.in_question and t.name and not t.likened and not t.label and t.sentence in near
    ]
    strict = [t for t in asked if strictness(t, settings) == "strict"]
    if analysis.intent == "quantity":
        # an amount of something the pages never mention (「要花多少手續費」) is not on them either
        # (Chinese nouns only: every Latin word counts as a noun, "figure", "roughly" too)
        strict += [t for t in asked if t not in strict and not t.latin and strictness(t, settings) in ("soft", "weak")]
    media = analysis.media
    about_page = bool(ABOUT_THE_PAGE.search(analysis.text))
    if confidence >= settings.focus_strict_margin or media or about_page:
        # (「凭啥再质押能多拿一份奖励？天上不会掉馅饼吧」: 馅饼 is rare, but the rest is the page's
        # question; 「进阶那一节的视频嘉宾是谁」: a question about something to read or watch asks
        # about its author, guest or source in words the reading list does not use)
        strict = [t for t in strict if t.name or t.zipf == 0]
    if strict:
        return RefusalDecision("not_covered", tuple(t.written or t.text for t in strict), known)
    soft = [t for t in asked if strictness(t, settings) == "soft" and not media and not about_page]
    if soft and confidence < settings.focus_soft_margin:
        return RefusalDecision("not_covered", tuple(t.written or t.text for t in soft), known)
    # (a question clause of scaffolding only — 「具體流程要怎麼走？」, 「那條路總共要走幾步？」: no noun — asks
    # about what was said before it)
    scaffolding_only = not any(t.in_question and t.noun for t in analysis.focus)
    # (a question about the page's videos or reading list asks about them: 「延伸閱讀總共列了幾篇？」)
    matched = media or any(t.in_question or (scaffolding_only and t.content) for t in covered)
    # a weak match with a noun the pages never use in a clause that asks ("Who founded Lido?":
    # founded), or with nothing of the question on the pages at all
    # (an everyday English word is no noun to go by: "shows up somewhere", "does offline count")
    unmatched_ask = not media and any(t.in_question and t.noun and not (t.latin and t.zipf >= 4.7) for t in unused)
    # …or a question whose own words the pages never use (「明天上海会下雨吗？」: 上海 is too
    # common a word to refuse on its own, but nothing else of it is on the pages either)
    # …or one with no word saying what it is about and none the pages use (「今天星期幾？」)
    asks_elsewhere = any(t.in_question for t in analysis.focus) or (not analysis.focus and word_coverage == 0)
    if confidence < FAR_BELOW and not analysis.media:
        return RefusalDecision("no_match", tuple(t.written or t.text for t in uncovered), known)
    if confidence < 0 and (unmatched_ask or (not matched and (unused or asks_elsewhere or analysis.intent == "other"))):
        return RefusalDecision("no_match", tuple(t.written or t.text for t in uncovered), known)
    return RefusalDecision("", tuple(t.written or t.text for t in uncovered), known)

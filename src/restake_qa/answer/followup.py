"""Follow-up questions: 「那風險呢？」 after 「什麼是再質押？」 stands alone as 「再質押的風險呢？」.

A follow-up is recognised by a pronoun that points back (它, it, they) or a carried-over topic
(那…呢, what about …); an English message that goes on from the last one ("and how do I
start?") is read with that one. The topic is the previous turn's glossary term, written in the asker's
script (the English name for an English question), and the follow-up is rewritten into a
readable question; a question that names its own topic is left as it is.
"""

from __future__ import annotations

import re

from ..text import CJK, TextTools, detect_language

_PRONOUN_ZH = re.compile(r"它們|它们|它|牠")
_PRONOUN_EN = re.compile(r"\b(it|its|they|them|their)\b", re.IGNORECASE)
_CARRY_ZH = re.compile(r"^(?:那麼|那么|那如果|那|咁|還有|还有)?\s*(?P<core>.+?)\s*呢?\s*[？?]?\s*$")
_CARRY_ZH_MARK = re.compile(r"^(那|那麼|那么|咁|還有|还有)|呢\s*[？?]?\s*$")
#: A Chinese follow-up's first question and what the message adds after it (「咁風險呢？會唔會蝕晒」).
_FIRST_QUESTION_ZH = re.compile(r"^(?P<head>[^？?]{1,20}[？?])\s*(?P<rest>\S.*)$", re.DOTALL)
_CARRY_EN = re.compile(r"^(?:and|so|but)?\s*(?:what|how) about\s+(?P<core>.+?)\s*[?？]?\s*$", re.IGNORECASE)
_NOUN_START = re.compile(r"^[\u4e00-\u9fff]{1,6}$")
#: An English message going on from the last one ("and how do I start?", "so what next?").
_CONTINUE_EN = re.compile(r"^(and|so|then|ok(ay)?|alright)\b[ ,]*\S", re.IGNORECASE)
#: The longest previous question a continuation is read with.
MAX_CONTEXT = 300
#: A follow-up whose subject is a person (「那我能賺多少？」) is about the topic, not the topic's own.
_PERSONAL = ("我", "你", "他", "她", "咱")
_PARTICLES = frozenset("呀啊吗嗎嘛吧呢哦喔啦咧")
#: Terms every question about the page may name (「手上就 0.5 個 ETH」): never the topic carried on,
#: which is then the page's own subject, the glossary's first term.
_GENERIC = frozenset({"以太幣", "以太坊"})


def resolve_question(question: str, history: list[dict[str, str]], tools: TextTools) -> str:
    """The follow-up ``question`` made to stand alone, or ``question`` itself."""
    if not history:
        return question
    text = question.strip()
    english = detect_language(text, tools) == "en"
    pronoun = (_PRONOUN_EN if english else _PRONOUN_ZH).search(text)
    first = None if english else _FIRST_QUESTION_ZH.match(text)
    head, rest = (first.group("head"), first.group("rest")) if first else (text, "")
    carry = _CARRY_EN.match(text) if english else (_CARRY_ZH.match(head) if _CARRY_ZH_MARK.search(head) else None)
    if english and not pronoun and not carry and _CONTINUE_EN.match(text) and not tools.glossary_terms_in(text):
        # "and how do I start?" after "I run my own validator at home…": read with what was said
        previous = history[-1].get("question", "").strip()
        if previous and len(previous) <= MAX_CONTEXT:
            return f"{previous} {text}"
    if not pronoun and not (carry and not tools.glossary_terms_in(text)):
        return question  # it names its own topic (「今天天氣如何？」 stays off-topic)
    if pronoun and tools.glossary_terms_in(text[: pronoun.start()]):
        return question  # the pronoun points at what the question named before it ("restake natively? … hook it up")
    topic = _topic(history, tools, english, simplified=detect_language(text, tools) == "zh-cn")
    if not topic or topic.lower() in text.lower():
        return question
    if pronoun:
        word = pronoun.group(0)
        replacement = topic if not (english and word.lower() in {"its", "their"}) else f"{topic}'s"
        return text[: pronoun.start()] + replacement + text[pronoun.end() :]
    assert carry is not None
    core = carry.group("core").strip()
    if english:
        return f"What about {core} of {topic}?"
    if core.startswith(_PERSONAL):  # 「那我能賺多少？」: the asker is the subject, the topic what it is about
        about = "关于" if detect_language(text, tools) == "zh-cn" else "關於"
        return f"{about}{topic}，{core.rstrip('呢？?')}呢？{rest}"
    joiner = (
        "的"
        if _NOUN_START.match(core) and not core.startswith(("要", "會", "会", "能", "可以", "怎麼", "怎么"))
        else ""
    )
    return f"{topic}{joiner}{core}{_question_end(core)}{rest}"


def _question_end(core: str) -> str:
    """What makes ``core`` a question: 呢？ after a word, ？ after a particle or an emoji
    (「具體怎麼開始呀 步驟求帶🥺」 does not become 「…🥺呢？」)."""
    last = core[-1:]
    if last in ("？", "?"):
        return ""
    return "呢？" if CJK.fullmatch(last) and last not in _PARTICLES else "？"


def _topic(history: list[dict[str, str]], tools: TextTools, english: bool, simplified: bool) -> str:
    for turn in reversed(history):
        terms = tools.glossary_terms_in(turn.get("question", "")) or tools.glossary_terms_in(turn.get("answer", ""))[:2]
        if terms and all(t.term in _GENERIC for t in terms):
            terms = list(tools.glossary[:1])  # 「手上就 0.5 個 ETH…」 then 「那怎麼開始？」: restaking
        if terms:
            term = max(terms, key=lambda t: len(t.term))  # the most specific term named
            if english:
                return term.english or term.term
            return tools.to_simplified(term.term) if simplified else term.term
    return ""

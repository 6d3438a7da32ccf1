"""How quoted units read in an answer, and the fixed-template lines around them: lead-ins
(「頁面列出 4 項：」), refusal explanations and notes — in the asker's language and script.
Nothing here writes a claim: templates only frame quotations or say what the page lacks."""

from __future__ import annotations

from ..alignment import READABLE
from ..text import CJK, SENTENCE_END
from ..units import Unit

ENGLISH_NOTE = "The English page lacks this part; this answer quotes the Traditional-Chinese page."
#: Said when an answer quotes a version of the page in another language than the asker's: an
#: English asker where the English page lacks the section (ENGLISH_NOTE), a Chinese asker where
#: only the English page has it.
VERSION_NOTES = {
    "en": ENGLISH_NOTE,
    "zh-tw": "中文頁面沒有這部分，以下引用英文版頁面。",
    "zh-cn": "中文页面没有这部分，以下引用英文版页面。",
}


def version_note(language: str, quoted: set[str]) -> str | None:
    """The note for an answer in ``language`` quoting page versions ``quoted``, if one is due."""
    readable = READABLE.get(language)
    return VERSION_NOTES.get(language) if readable is not None and quoted - readable else None


_LEADS = {
    "list": {"zh-tw": "頁面列出以下 {n} 項：", "zh-cn": "页面列出以下 {n} 项：", "en": "The page lists {n}:"},
    "table": {"zh-tw": "頁面這樣比較{sides}：", "zh-cn": "页面这样比较{sides}：", "en": "The page compares {sides}:"},
    "steps": {"zh-tw": "{column}的步驟：", "zh-cn": "{column}的步骤：", "en": "Steps for {column}:"},
}
_AND = {"zh-tw": "和", "zh-cn": "和", "en": " and "}

REFUSALS = {
    "no_match": {
        "zh-tw": "抱歉，這個問題超出了 ethereum.org 再質押頁面的內容，我無法根據該頁面回答。",
        "zh-cn": "抱歉，这个问题超出了 ethereum.org 再质押页面的内容，我无法根据该页面回答。",
        "en": "Sorry, ethereum.org's restaking page does not answer that, so I can't either.",
    },
    "not_covered": {
        "zh-tw": "頁面沒有提到{terms}，所以我無法根據它回答。",
        "zh-cn": "页面没有提到{terms}，所以我无法根据它回答。",
        "en": "The page doesn't mention {terms}, so I can't answer from it.",
    },
    "live_data": {
        "zh-tw": "這個頁面是介紹再質押的說明文章，沒有即時的價格、收益率、數字或新聞，所以我無法回答。",
        "zh-cn": "这个页面是介绍再质押的说明文章，没有实时的价格、收益率、数字或新闻，所以我无法回答。",
        "en": "The page is an explainer about restaking; it has no live prices, yields, figures or news, so I can't answer that.",
    },
    "prediction": {
        "zh-tw": "頁面不做預測，也不提供投資建議，所以我無法回答。",
        "zh-cn": "页面不做预测，也不提供投资建议，所以我无法回答。",
        "en": "The page makes no predictions and gives no investment advice, so I can't answer that.",
    },
    "legal": {
        "zh-tw": "頁面不討論法律、監管或稅務問題，所以我無法回答。",
        "zh-cn": "页面不讨论法律、监管或税务问题，所以我无法回答。",
        "en": "The page doesn't discuss legal, regulatory or tax questions, so I can't answer that.",
    },
    "not_a_question": {
        "zh-tw": "這看起來不是關於再質押的問題。請用一句話提問，例如「再質押有哪些風險？」",
        "zh-cn": "这看起来不是关于再质押的问题。请用一句话提问，例如“再质押有哪些风险？”",
        "en": 'That doesn\'t look like a question about restaking. Ask in a sentence, for example "What are the risks of restaking?"',
    },
}
#: A greeting alone (「你好」, "hi"): how to ask, instead of "that is not a question".
GREETING = {
    "zh-tw": "我根據 ethereum.org 的再質押頁面回答問題，歡迎提問，例如「再質押有哪些風險？」",
    "zh-cn": "我根据 ethereum.org 的再质押页面回答问题，欢迎提问，例如“再质押有哪些风险？”",
    "en": 'I answer questions from ethereum.org\'s restaking page; ask me, for example, "What are the risks of restaking?"',
}
SUGGESTIONS_INTRO = {
    "zh-tw": "您可以看看以下相關章節：",
    "zh-cn": "您可以看看以下相关章节：",
    "en": "These sections may be close:",
}


def quoted_terms(terms: list[str], language: str) -> str:
    if language == "en":
        return ", ".join(f"“{t}”" for t in terms)
    if language == "zh-cn":
        return "、".join(f"“{t}”" for t in terms)
    return "、".join(f"「{t}」" for t in terms)


def refusal_message(
    reason: str, language: str, uncovered: list[str], *, suggestions: bool = False, kind: str = ""
) -> str:
    """Why the page cannot answer, in ``language``; introducing the suggested sections when
    there are some (``kind``: which sort of not-a-question it is — a greeting gets a welcome)."""
    if reason == "not_covered" and not uncovered:
        reason = "no_match"
    if reason == "not_a_question" and kind == "greeting":
        return GREETING[language]
    template = REFUSALS.get(reason, REFUSALS["no_match"])[language]
    message = template.format(terms=quoted_terms(uncovered[:3], language))
    if suggestions:
        message += " " + SUGGESTIONS_INTRO[language] if language == "en" else SUGGESTIONS_INTRO[language]
    return message


def lead(layout: str, language: str, *, n: int = 0, sides: tuple[str, ...] = (), column: str = "") -> str | None:
    templates = _LEADS.get(layout)
    if not templates:
        return None
    quoted = quoted_terms(list(sides), language) if sides else ""
    joined = _AND[language].join(quoted.split("、" if language != "en" else ", ")) if sides else ""
    return templates[language].format(n=n, sides=joined, column=column)


def display(unit: Unit, *, compact: bool = False) -> str:
    """How a unit reads: a labels-table row as 「term：description」 (only the first sentence
    of the description when ``compact``), a step or item as written, a sentence as it is."""
    if unit.kind == "row" and unit.table_kind == "labels" and unit.label:
        description = unit.cells[1] if len(unit.cells) > 1 else ""
        if compact:
            description = first_sentence(description)
        chinese = bool(CJK.search(unit.label + description))
        # a further column reads with its header: 「…（風險等級：低）」, "… (Risk level: LOW)"
        extra = [(h, c) for h, c in zip(unit.headers[2:], unit.cells[2:]) if c]
        if extra:
            said = "；".join(f"{h}：{c}" for h, c in extra) if chinese else "; ".join(f"{h}: {c}" for h, c in extra)
            description = f"{description}（{said}）" if chinese else f"{description} ({said})"
        if not description:
            return unit.label
        return f"{unit.label}{'：' if chinese else ': '}{description}"
    return unit.text.strip()


def first_sentence(text: str) -> str:
    m = SENTENCE_END.search(text)
    return text[: m.end()].strip() if m else text.strip()

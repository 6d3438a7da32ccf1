"""What words signal to the answer selection (answer/select.py): the words of a unit that fit an
intent (a reason's 因為/because, a quantity's digits), and the ways a question asks for several
things, for steps, for what comes next, for a video or for a full name."""

from __future__ import annotations

import re

#: Words of a unit that fit what the question asks for (the `cue` feature of a unit).
CUES = {
    "reason": re.compile(
        r"因為|因为|所以|好處|好处|作為回報|作为回报|回報|回报|以便|而不用|而不是|而不必|不需要|不必|獲益|获益|"
        r"because|so that|in return|benefit|instead|so they|this way"
    ),
    # what follows from something: the risks' "if …, … could be slashed / lower the security"
    "consequence": re.compile(
        r"如果|若|可能|導致|导致|罰沒|罚没|銷毀|销毁|失去|損失|损失|降低|影響|影响|無法|无法|"
        r"\bif\b|could|\bmay\b|\blose|slashed|destroyed|lower|impact|affect"
    ),
    "quantity": re.compile(
        r"\d|多少|數千|数千|數百萬|数百万|分鐘|分钟|時間|时间|等待|利率|不同|取決|取决|最低|"
        r"minutes?|thousands|millions|rates?|wait|depends|minimum"
    ),
    "yes_no": re.compile(
        r"可以|能|無|无|不|沒有|没有|需要|必須|必须|並非|并非|\b(may|can|not|no|without|need|don't)\b"
    ),
    "who": re.compile(r"者|人|提供商|營運者|营运者|平台|people|operators?|providers?|stakers?"),
    "definition": re.compile(
        r"是指|是一種|是一种|被稱為|被称为|稱為|称为|指的是|是一項|是一项|這些是|这些是|"
        r"\bis when\b|\bis a\b|known as|refers to|\bare the\b"
    ),
}
#: Asking for several things (which parties, what are the…): the whole list, not the one row named.
PLURAL = re.compile(
    r"哪些人|哪幾方|哪几方|哪些角色|誰是誰|谁是谁|角色|實體|实体|哪幾種|哪几种|幾種|几种|有哪些|都有哪些|清單|清单|列一下|"
    r"parties|players|roles|entities|involved|\blist\b|all the|what are the|which are|kinds of|types of"
)
#: …naming the kind of thing the rows are (parties, roles, kinds): the whole list even when the
#: question names one row as an example (「有哪些角色？平台、營運者…」, "all the players? operators…")
#: — not what one row does (「營運者要負責哪些事」: that row).
KINDS = re.compile(
    r"哪些人|哪幾方|哪几方|角色|實體|实体|誰是誰|谁是谁|哪幾種|哪几种|幾種|几种|參與者|参与者|"
    r"parties|players|roles|entities|involved|kinds of|types of|all the|what else|who else"
)
#: Asking how to begin, for steps, a path or a checklist: a steps column in order.
STEPS = re.compile(
    r"步驟|步骤|第一步|流程|路線|路线|(?<!extra )steps?\b|first thing|checklist|\bpath\b|how (do|can|to|should) i (start|begin|get started|restake)|怎麼開始|怎么开始|咋开始|開始|开始|入門|入门|上手|最簡單|最简单|懶人|懒人|get started|simplest|easiest|laziest|most lazy|最 ?lazy|\bstart(ing)? (restaking|to restake)|get into restaking"
)
#: The asker has done part of it and asks what comes next (「拿到 stETH 了，接下來要怎麼再質押？」).
NEXT = re.compile(r"接下來|接下来|下一步|然後呢|然后呢|之後呢|之后呢|\bnext\b|\bthen what\b|\bafter that\b")
#: Asking for a video — unless saying which not to give ("not the videos", 「不要影片」).
VIDEO = re.compile(r"影片|视频|視頻|影音|訪談|访谈|\bvideos?\b|youtube|interview")
NO_VIDEO = re.compile(
    r"(\bnot|\bno|\bwithout|\bexcept|不要|不是|除了|別|别|不看)\s*(the |any )?(影片|视频|視頻|videos?)"
)
#: Intents whose answer is the named row itself (what or who it is, which ones there are).
ABOUT_ITSELF = frozenset({"definition", "who", "list", "comparison"})
#: Asking what two things share (「哪些一樣」, "which lines are the same"), not how they differ.
ALIKE = re.compile(r"一樣|一样|相同|共同|共通|都有|\bsame\b|\bshared?\b|\balike\b|\bin common\b")
#: Asking what an abbreviation stands for: the unit that spells the name out.
FULL_NAME = re.compile(r"全名|全稱|全称|縮寫|缩写|stand for|full name|abbreviat")
#: Asking how the parties find each other (「AVS 是怎麼找到營運者的」, "how would an AVS find operators"):
#: the page's marketplaces answer it (MATCHMAKING), not the row of the party to be found.
FINDING = re.compile(
    r"找到|去哪找|怎麼找|怎么找|哪裡找|哪里找|撮合|對接|对接|\bfind(ing)?\b|\bmatch(ing|es)? (with|up)\b|marketplace"
)
MATCHMAKING = re.compile(r"找到彼此|找到對方|相互發現|相互发现|市場|市场|find each other|find operators|marketplace")

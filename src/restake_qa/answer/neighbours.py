"""What a quoted unit needs from the units around it to be read on its own.

* a sentence that points back (「這樣他們就不需要…」, "In return, …") needs the sentence it
  points back to;
* a title that says nothing itself (an alert's 「以太坊共同創辦人正在輸入…」) needs what it
  titles: the paragraph after it;
* a sentence that invites the reader to picture something (「想像兩個世界；…」, "Picture two
  worlds; …") needs the sentence after it, which says what to picture;
* a video needs the line that captions it (the page gives a video's length there, not in its
  title: 「18 分鐘解釋再質押」).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..units import Unit

#: A sentence opening so points back at the one before it.
_POINTS_BACK = re.compile(
    r"(這樣|这样|這些|这些|因此|所以|然而|不過|不过|同樣地|同样地|作為回報|作为回报|"
    r"this way|these\b|however|therefore|in return|that way)",
    re.IGNORECASE,
)
_FULL_STOP = re.compile(r"[。．.!！?？]\s*$")
#: A title: no full stop, ending in an ellipsis or a colon (「…正在輸入…」, "The co-founder is typing…").
_TITLE = re.compile(r"(…|\.\.\.|:|：)\s*$")
#: An alert's first paragraph under its title (「名稱誤區提示：有些人將…混為一談。」): the paragraph
#: after it says what the alert is for (「兩者都…，但再質押意味著…」).
_ALERT_OPENS = re.compile(r"^[^：:]{2,16}[：:]")
#: A sentence opening so announces what the next one says.
_ANNOUNCES = re.compile(r"(想像|想象|picture|imagine)", re.IGNORECASE)
#: How far back a chain of sentences pointing back is followed (「然而」 → 「作為回報」 → the claim).
_MAX_CHAIN = 3


def with_antecedents(units: list[Unit], units_of: Callable[[str], list[Unit]]) -> list[Unit]:
    """``units`` with each sentence that points back placed after the sentence it points back
    to, and each alert's title followed by the paragraph it titles, when that one is not quoted
    already (``units_of``: a section's units in page order)."""
    out: list[Unit] = []
    for u in units:
        chain, section = [u], units_of(u.key)
        while chain[0].kind in ("sentence", "alert") and _POINTS_BACK.match(chain[0].text) and len(chain) < _MAX_CHAIN:
            at = next((j for j, x in enumerate(section) if x is chain[0]), 0)
            before = section[at - 1] if at > 0 else None
            if before is None or before.kind != u.kind or any(before is x for x in [*out, *units]):
                break
            chain.insert(0, before)
        if (u.kind == "alert" and (_TITLE.search(u.text) or _ALERT_OPENS.search(u.text))) or (
            u.kind == "sentence" and _ANNOUNCES.match(u.text)
        ):
            at = next((j for j, x in enumerate(section) if x is u), len(section))
            # (the next of its kind: the English page has its tabs' labels, an item, in between)
            after = next((x for x in section[at + 1 : at + 3] if x.kind == u.kind), None)
            if after is not None and not any(after is x for x in [*out, *units]):
                chain.append(after)
        out += chain
    return out


def caption(video: Unit, section: list[Unit]) -> list[Unit]:
    """The line that captions ``video`` in its ``section``'s units: one sentence without a full
    stop, alone on the line before the video, that the video's own text does not repeat
    (「视频：18 分钟了解再质押」 says it already)."""
    before = [u for u in section if u.line == video.line - 1]
    if (
        len(before) == 1
        and before[0].kind == "sentence"
        and not _FULL_STOP.search(before[0].text)
        and before[0].text.strip() not in video.text
    ):
        return before
    return []

"""A question's clauses and sentences: where people's punctuation, emoji and emoticons divide
what they write (read by :mod:`restake_qa.analysis`, which decides which clauses ask)."""

from __future__ import annotations

import re

#: Emoji end what was said like a full stop (「…看懵了😵 这三个缩写是啥？」).
EMOJI = "\U0001f300-\U0001faff\u2600-\u27bf"
CLAUSE = re.compile(
    r"[，,。；;！!？?\n…]+|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])|\s+-\s+|(?<!vs)(?<!etc)(?<!e\.g)\.\s+"
    # a label before a colon (「記者核稿：」, "DAO treasury q:"; not a time or a link), emoji
    r"|\s*(?<!\d):(?!\d|//)\s*|\s*[" + EMOJI + r"]+[\ufe0f\u200d" + EMOJI + r"]*\s*"
    # an emoticon written in letters (「午休偷看一下XD 請問…」)
    r"|\s*(?<![a-z])(?:xd+|lol|lmao|orz|qq)(?![a-z])\s*"
)
#: What ends a sentence (the clauses of one sentence are read together: see _asking).
SENTENCE_END = re.compile(r"[。.!！?？\n" + EMOJI + r"]")
#: A clause before a colon labels what follows (「記者核稿：」, "sanity check for my notes:"): it never asks.
LABEL = re.compile(r"^\s*:")


def split(norm: str, original: str) -> list[tuple[str, str]]:
    """The clauses of ``norm`` (stripped), each with the same stretch of ``original``."""
    out, start = [], 0
    for m in [*CLAUSE.finditer(norm), None]:
        end = m.start() if m else len(norm)
        piece = norm[start:end]
        lead = len(piece) - len(piece.lstrip())
        if piece.strip():
            a, b = start + lead, start + lead + len(piece.strip())
            out.append((norm[a:b], original[a:b]))
        if m:
            start = m.end()
    return out


def labels(separators: list[str]) -> list[bool]:
    """Which clauses are a label: everything before a colon back to the sentence's start or the
    colon before it (「做保險核保的，習慣先看最壞情況：」; 「問題：…預期：…」 has two)."""
    labels, pending = [False] * len(separators), []
    for k, separator in enumerate(separators):
        pending.append(k)
        if LABEL.match(separator):
            for j in pending:
                labels[j] = True
        if LABEL.match(separator) or SENTENCE_END.search(separator):
            pending = []
    return labels


def sentences(norm: str, clauses: list[str]) -> tuple[list[int], list[str]]:
    """Which sentence each clause is in, and the punctuation after each."""
    sentence_of, separators, sentence, at = [], [], 0, 0
    for clause in clauses:
        at = norm.find(clause, at) + len(clause)
        after = CLAUSE.match(norm, at)
        separators.append(after.group(0) if after else "")
        sentence_of.append(sentence)
        if SENTENCE_END.search(separators[-1]):
            sentence += 1
    return sentence_of, separators

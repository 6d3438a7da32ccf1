"""Sections → :class:`Chunk` objects, packed by a budget of jieba tokens.

A section's text is cut into lines (paragraphs, table rows) and, where a line is over the
budget, into sentences (on 。！？；!?); these pieces are packed into chunks of about ``target``
tokens, never more than ``maximum``; a sentence longer than ``maximum`` is cut at the clause boundary (，、：, …) nearest the budget, or failing that at a
word boundary. Cuts only fall between jieba words, Latin words, numbers and URLs. A chunk is
an exact slice of its section's text, so the chunks of a section joined reproduce the text.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass

from .corpus import Section, section_key
from .text import CLAUSE_ENDS, CLOSERS, SENTENCE_END, STOPS, TextTools

# A chunk may be cut after a sentence (stops and ；) or a clause; an answer quotes whole
# sentences (stops only: a table row's ； separates cells, so a row keeps its label).
_SENTENCE_END = re.compile(f"[{re.escape(STOPS)}；]+[{re.escape(CLOSERS)}]*\\s*|\\n+")
_ANSWER_SENTENCE_END = re.compile(f"(?:{SENTENCE_END.pattern})\\s*|\\n+")
_CLAUSE_END = set(CLAUSE_ENDS)


@dataclass(frozen=True)
class ChunkerSettings:
    target: int = 48
    maximum: int = 96

    def __post_init__(self) -> None:
        if not 0 < self.target <= self.maximum:
            raise ValueError(f"chunk budget needs 0 < target <= maximum, got {self.target}/{self.maximum}")


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: an exact slice ``[start, end)`` of one section's text."""

    id: str
    source: str
    anchor: str
    title: str
    path: tuple[str, ...]
    url: str
    text: str
    start: int
    end: int
    tokens: int

    @property
    def section_key(self) -> str:
        return section_key(self.source, self.anchor)

    @property
    def display_text(self) -> str:
        return self.text.strip()

    @property
    def embedding_text(self) -> str:
        """What the model sees: the heading path as a title, then the text."""
        return " > ".join(self.path) + "\n" + self.display_text


def chunk_id(source: str, anchor: str, text: str) -> str:
    return hashlib.sha256(f"{source}\0{anchor}\0{text}".encode()).hexdigest()[:20]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of ``text``; each span keeps its trailing punctuation/space."""
    spans = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > start:
            spans.append((start, m.end()))
            start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def chunk_section(section: Section, tools: TextTools, settings: ChunkerSettings) -> list[Chunk]:
    """Cut one section into chunks (none for a section without text)."""
    text = section.text
    if not text.strip():
        return []
    words = tools.segments(text)
    counted = _Words([(s, e) for w, s, e in words if w.strip()])
    boundaries = {0, len(text)} | {s for _, s, _ in words} | {e for _, _, e in words}
    tokens_in = counted.count

    # Lines (paragraphs, table rows, list items) are packed whole when they fit, so a table
    # row keeps its label with its description; longer lines fall back to sentences.
    pieces: list[tuple[int, int]] = []
    for la, lb in _lines(text):
        if tokens_in(la, lb) <= settings.maximum:
            pieces.append((la, lb))
            continue
        for a, b in split_sentences(text[la:lb]):
            pieces.extend(_split_long(text, la + a, la + b, boundaries, counted, settings.maximum))

    chunks: list[Chunk] = []
    start, size = pieces[0][0], 0
    for a, b in pieces:
        n = tokens_in(a, b)
        if size and (size + n > settings.maximum or size >= settings.target):
            chunks.append(_make(section, text, start, a, size))
            start, size = a, 0
        size += n
    chunks.append(_make(section, text, start, len(text), size))
    # A chunk of only whitespace (e.g. trailing newlines) joins the previous one.
    merged: list[Chunk] = []
    for c in chunks:
        if merged and not c.text.strip():
            prev = merged.pop()
            c = _make(section, text, prev.start, c.end, prev.tokens)
        merged.append(c)
    return merged


def chunk_sections(sections: list[Section], tools: TextTools, settings: ChunkerSettings) -> list[Chunk]:
    """All chunks of all sections, in page order."""
    return [c for s in sections for c in chunk_section(s, tools, settings)]


@dataclass(frozen=True)
class Sentence:
    """A quotable sentence of a section: ``text`` is ``section.text[start:end]`` stripped."""

    source: str
    anchor: str
    start: int
    end: int
    text: str

    @property
    def section_key(self) -> str:
        return section_key(self.source, self.anchor)


def section_sentences(section: Section) -> list[Sentence]:
    """The sentences an answer may quote: cut at 。！？!? and line ends (a table row's ；
    separates cells, not sentences, so a row's label stays with its first sentence)."""
    out = []
    start = 0
    text = section.text
    ends = [m.end() for m in _ANSWER_SENTENCE_END.finditer(text)] + [len(text)]
    for end in ends:
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            s = start + lead
            e = s + len(piece.strip())
            out.append(Sentence(section.source, section.anchor, s, e, text[s:e]))
        start = end
    return out


def _lines(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in re.finditer(r"\n+", text):
        spans.append((start, m.end()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _make(section: Section, text: str, start: int, end: int, tokens: int) -> Chunk:
    piece = text[start:end]
    return Chunk(
        id=chunk_id(section.source, section.anchor, piece),
        source=section.source,
        anchor=section.anchor,
        title=section.title,
        path=section.path,
        url=section.url,
        text=piece,
        start=start,
        end=end,
        tokens=tokens,
    )


class _Words:
    """The counted words of a text as sorted, non-overlapping ``(start, end)`` spans, so that
    the words inside any span are found by bisection (chunking stays linear in page size)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = spans
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]

    def between(self, a: int, b: int) -> tuple[int, int]:
        """Index range of the words lying wholly inside ``[a, b)``."""
        return bisect.bisect_left(self.starts, a), bisect.bisect_right(self.ends, b)

    def count(self, a: int, b: int) -> int:
        i, j = self.between(a, b)
        return max(j - i, 0)

    def inside(self, a: int, b: int) -> list[tuple[int, int]]:
        i, j = self.between(a, b)
        return self.spans[i:j]


def _split_long(
    text: str, a: int, b: int, boundaries: set[int], counted: _Words, maximum: int
) -> list[tuple[int, int]]:
    """Cut an over-long sentence at clause ends (else word boundaries) into ≤ maximum pieces."""
    inside = counted.inside(a, b)
    if len(inside) <= maximum:
        return [(a, b)]
    pieces = []
    first = 0  # inside[first:] are the words not yet in a piece
    while len(inside) - first > maximum:
        # The last allowed cut is after the maximum-th word; prefer a clause end before it.
        limit = inside[first + maximum - 1][1]
        cut = None
        for pos in range(limit, inside[first][1], -1):
            if pos in boundaries and text[pos - 1] in _CLAUSE_END:
                cut = pos
                break
        if cut is None or cut <= a:
            cut = limit
        pieces.append((a, cut))
        a = cut
        while first < len(inside) and inside[first][0] < cut:
            first += 1
    pieces.append((a, b))
    return pieces

"""The chunker's cost grows linearly with the size of a page (it was quadratic: 5 s for a
138 KB page, 38 s for 552 KB, no end in sight for 5.5 MB). One section of generated prose,
so that all of it is cut in one go, at 0.5 MB and at 4× that (2 MB); the CPU time of the
larger may be at most 10× the smaller's (linear is ≈ 4×, quadratic ≈ 16×) — a generous
bound, not a timing (figures: bench/, section chunking)."""

from __future__ import annotations

import time

from restake_qa.chunking import ChunkerSettings, chunk_section
from restake_qa.corpus import parse_page

from helpers import CORPUS


def prose_page(size: int) -> str:
    """A page of one section holding ~``size`` bytes of the real page's paragraphs, repeated."""
    lines = (CORPUS / "restaking.zh-tw.md").read_text("utf-8").split("---", 2)[2].splitlines()
    paragraphs = [x for x in lines if x.strip() and x.lstrip()[0] not in "#<|-*!>{"]
    body, n, i = [], 0, 0
    while n < size:
        paragraph = f"{paragraphs[i % len(paragraphs)]}（第 {i} 段）"
        body.append(paragraph)
        n += len(paragraph.encode()) + 2
        i += 1
    return "---\ntitle: 長頁\nlang: zh-tw\n---\n\n## 長段落 {#long}\n\n" + "\n\n".join(body) + "\n"


def _chunk_cpu_seconds(tools, size: int) -> tuple[float, int, int]:
    section = next(s for s in parse_page(prose_page(size), "long.zh-tw.md") if s.anchor == "long")
    started = time.process_time()
    chunks = chunk_section(section, tools, ChunkerSettings())
    seconds = time.process_time() - started
    assert "".join(c.text for c in chunks) == section.text  # nothing lost, however long
    assert all(c.tokens <= 96 for c in chunks)
    return seconds, len(section.text), len(chunks)


def test_chunking_a_multi_megabyte_page_is_linear(tools):
    _chunk_cpu_seconds(tools, 50_000)  # warm jieba's dictionary and caches
    small, small_chars, small_chunks = _chunk_cpu_seconds(tools, 500_000)
    large, large_chars, large_chunks = _chunk_cpu_seconds(tools, 2_000_000)
    assert 3.5 < large_chars / small_chars < 4.5 and large_chunks > 3 * small_chunks
    print(f"\nchunking one section: {small_chars:,} chars in {small:.2f} s CPU, {large_chars:,} in {large:.2f} s")
    assert large < 10 * small, (small, large)

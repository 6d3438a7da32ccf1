"""Validating a build before it is published: it loads, agrees with its manifest, and answers.

A few chunks' own texts, asked as questions through the retriever, must come back with hits,
and the dense search must find their sections (which also proves that FAISS row i is chunk i).
"""

from __future__ import annotations

from pathlib import Path

from .chunking import Chunk
from .config import Settings
from .embedding import Embedder
from .errors import IndexLoadError
from .index import load_index_folder
from .retrieval import Retriever
from .text import TextTools

#: Chunks used as smoke queries when a build is validated.
SMOKE_QUERIES = 3


def validate_build(folder: Path, embedder: Embedder, tools: TextTools, settings: Settings) -> None:
    """Refuse to publish a build that does not load, disagrees with its manifest or cannot
    answer: a few chunks' own texts, asked as questions through the retriever, must come
    back with hits, and the dense search must find their sections (which also proves that
    FAISS row i is chunk i)."""
    index = load_index_folder(folder, expected_model=embedder.model_id)
    if index.dimension != embedder.dimension:
        raise IndexLoadError(
            f"{folder}: manifest dimension {index.dimension} differs from the model's "
            f"{embedder.dimension}; the build was not published"
        )
    if not index.chunks:
        return
    retriever = Retriever(index, embedder, tools, settings)
    for chunk in _smoke_probes(list(index.chunks)):
        query = chunk.display_text[:80]
        result = retriever.search(query, top_k=len(index.sections))
        if not result.hits:
            raise IndexLoadError(f"{folder}: the smoke query {query[:40]!r} found nothing; the build was not published")
        qvec = embedder.embed_queries([query])
        _, ids = index.vectors.search(qvec, min(5, len(index.chunks)))
        keys = {index.chunks[int(i)].section_key for i in ids[0] if i >= 0}
        if chunk.section_key not in keys:
            raise IndexLoadError(
                f"{folder}: the smoke query {query[:40]!r} did not find its own section "
                f"{chunk.section_key} among the nearest vectors; the vectors do not match the "
                "chunks, so the build was not published"
            )


def _smoke_probes(chunks: list[Chunk]) -> list[Chunk]:
    """Up to SMOKE_QUERIES chunks spread over the index whose text occurs nowhere else."""
    seen: dict[str, int] = {}
    for c in chunks:
        seen[c.display_text] = seen.get(c.display_text, 0) + 1
    unique = [c for c in chunks if seen[c.display_text] == 1 and len(c.display_text) >= 8]
    if not unique:
        return []
    picks = {0, len(unique) // 2, len(unique) - 1}
    return [unique[i] for i in sorted(picks)][:SMOKE_QUERIES]

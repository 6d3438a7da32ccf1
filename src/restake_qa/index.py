"""The index on disk: the layout of the data folder, writing one build, and loading it back
with every check.

Layout of the data folder::

    <data_dir>/
      CURRENT                 name of the live build (switched with os.replace)
      build.lock              held (flock) by the one build that may run
      cache/embeddings.sqlite embeddings by (model id, sha256 of the embedded text)
      builds/<version>/       one complete build:
        manifest.json           written last; format, model, chunker, corpus hash, counts, files
        chunks.jsonl            row i = FAISS id i
        sections.json           the table of contents
        sentences.jsonl         the quotable sentences; row i = row i of sentences.npy
        sources/                the corpus files it was built from (a rollback restores them)
        vectors.faiss           inner-product index over normalised chunk embeddings
        sentences.npy           sentence embeddings
        headings.npy            row i: the embedding of section i's English name
        titles.npy              row i: section i's title embedded as a question
        lexical/                BM25 (bm25s) over the chunks' jieba tokens
      builds/.staging-*/      a build in progress; removed by the next build if left behind
      builds/.trash-*/        a build being pruned; removed by the next build if left behind

How builds are made, published and rolled back is :mod:`restake_qa.build`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .chunking import Chunk, ChunkerSettings, Sentence
from .corpus import Block, Link, Section
from .errors import IndexLoadError
from .fsutil import sha256_file, write_atomic
from .lexical import LexicalIndex

FORMAT_VERSION = (
    5  # 3: sections carry their page id (language versions); 4: line blocks, tables, title vectors; 5: blocks' links
)
#: Up to this many chunks the index is exact (flat inner product); above it, HNSW. Measured
#: (bench/, 2 cores): exact search over 100k vectors takes ~6 ms with one thread (what
#: `serve` uses), builds in 0.1 s and needs no recall trade-off; HNSW answers in 0.7 ms but
#: takes ~45 s to build. Exact stays ≤ ~15 ms up to here.
EXACT_SEARCH_LIMIT = 200_000
#: HNSW parameters above the limit: recall@10 0.997–0.999 against exact search at 100k
#: (bench/); efConstruction 80 gave 0.985–0.998 depending on the queries.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128


@dataclass(frozen=True)
class Index:
    """A loaded build: chunks, sections, sentences, the FAISS index and the lexical index."""

    path: Path
    manifest: dict[str, Any]
    chunks: tuple[Chunk, ...]
    chunk_tokens: tuple[tuple[str, ...], ...]
    sections: tuple[Section, ...]
    vectors: Any  # faiss.Index over the chunks
    lexical: LexicalIndex
    sentences: tuple[Sentence, ...]
    sentence_vectors: np.ndarray
    heading_vectors: np.ndarray  # row i: sections[i].english_name
    title_vectors: np.ndarray  # row i: sections[i].title, embedded as a question
    section_by_key: dict[str, Section]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def model_id(self) -> str:
        return str(self.manifest["model"]["id"])

    @property
    def dimension(self) -> int:
        return int(self.manifest["model"]["dimension"])

    @property
    def precision(self) -> str:
        """The model precision the vectors were made at (builds before it was recorded: fp32)."""
        return str(self.manifest["model"].get("precision", "fp32"))


def search_with_one_thread() -> None:
    """Make FAISS search with one thread, process-wide (an answering process searches one
    vector at a time). OpenMP's team costs more than it saves there, and its idle threads
    spin on the cores the model needs next: in-process answers 15 % faster (bench/README.md)."""
    import faiss

    faiss.omp_set_num_threads(1)


# paths ------------------------------------------------------------------------------------
def builds_dir(data_dir: Path) -> Path:
    return data_dir / "builds"


def current_version(data_dir: Path) -> str | None:
    """The name of the live build (what ``CURRENT`` says), or None."""
    try:
        name = (data_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def current_path(data_dir: Path) -> Path:
    version = current_version(data_dir)
    if version is None:
        raise IndexLoadError(
            f"no index in {data_dir}; run `restake-qa build` (or set RESTAKE_QA_DATA_DIR to the folder that holds one)"
        )
    return builds_dir(data_dir) / version


def publish(data_dir: Path, version: str) -> None:
    """Make ``version`` the live build: one atomic replacement of ``CURRENT``."""
    write_atomic(data_dir / "CURRENT", (version + "\n").encode())


def live_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The manifest of the live build, or None (no build, or a broken one)."""
    version = current_version(data_dir)
    if not version:
        return None
    try:
        manifest = json.loads((builds_dir(data_dir) / version / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


# write ------------------------------------------------------------------------------------
def make_vector_index(vectors: np.ndarray) -> Any:
    """Exact inner product up to EXACT_SEARCH_LIMIT vectors, HNSW above it."""
    import faiss

    n, dim = vectors.shape
    index: Any
    if n <= EXACT_SEARCH_LIMIT:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


@dataclass(frozen=True)
class BuildContent:
    """Everything one build folder holds, before it is written."""

    sections: list[Section]
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray
    sentences: list[Sentence]
    sentence_vectors: np.ndarray
    heading_vectors: np.ndarray
    title_vectors: np.ndarray


def sections_json(sections: Sequence[Section]) -> bytes:
    """``sections.json`` of a build: the parsed sections (the build's fingerprint hashes it)."""
    return json.dumps([asdict(s) for s in sections], ensure_ascii=False, indent=1).encode("utf-8")


def write_build(
    folder: Path,
    version: str,
    content: BuildContent,
    *,
    model: dict[str, Any],
    chunker: ChunkerSettings,
    corpus_sha256: str,
    previous: str | None,
    changes: dict[str, Any] | None = None,
    tokenizer: str = "",
) -> dict[str, Any]:
    """Write a complete build into ``folder``, the manifest (with every file's checksum) last."""
    import faiss

    with open(folder / "chunks.jsonl", "w", encoding="utf-8") as fh:
        for chunk, toks in zip(content.chunks, content.tokens):
            row = asdict(chunk)
            row["lexical_tokens"] = toks
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (folder / "sections.json").write_bytes(sections_json(content.sections))
    faiss.write_index(make_vector_index(content.vectors), str(folder / "vectors.faiss"))
    with open(folder / "sentences.jsonl", "w", encoding="utf-8") as fh:
        for sentence in content.sentences:
            fh.write(json.dumps(asdict(sentence), ensure_ascii=False) + "\n")
    np.save(folder / "sentences.npy", content.sentence_vectors.astype(np.float32))
    np.save(folder / "headings.npy", content.heading_vectors.astype(np.float32))
    np.save(folder / "titles.npy", content.title_vectors.astype(np.float32))
    LexicalIndex.build(content.tokens).save(folder / "lexical")
    files = {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "version": version,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous": previous,
        "model": model,
        "chunker": asdict(chunker),
        "lexical": {"library": "bm25s", "tokens": "jieba words of OpenCC tw2sp, lower-cased"},
        "vector_index": "flat-ip" if len(content.chunks) <= EXACT_SEARCH_LIMIT else "hnsw-ip",
        "corpus_sha256": corpus_sha256,
        "tokenizer": tokenizer,  # how the lexical tokens were made (see build.tokenizer_probe)
        "changes": changes,  # sections added, changed, removed against `previous` (the console shows them)
        "counts": {
            "sections": len(content.sections),
            "chunks": len(content.chunks),
            "sentences": len(content.sentences),
        },
        "files": files,
    }
    write_atomic(folder / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1).encode())
    return manifest


# load -------------------------------------------------------------------------------------
def load_index(data_dir: Path, expected_model: str | None = None) -> Index:
    """Load the live build of ``data_dir``; see :func:`load_index_folder` for the checks."""
    return load_index_folder(current_path(data_dir), expected_model=expected_model)


def _read_manifest(folder: Path, expected_model: str | None) -> dict[str, Any]:
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise IndexLoadError(f"{manifest_path} is missing: the build is incomplete; run `restake-qa build`")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise IndexLoadError(f"{manifest_path} is not valid JSON; run `restake-qa build --force`") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexLoadError(
            f"{folder} has index format {found}, this restake-qa reads "
            f"format {FORMAT_VERSION}; run `restake-qa build --force`"
        )
    if expected_model and manifest["model"]["id"] != expected_model:
        raise IndexLoadError(
            f"{folder} was built with model {manifest['model']['id']!r} but the configured model is "
            f"{expected_model!r}; rebuild with `restake-qa build --force` or set RESTAKE_QA_MODEL "
            f"to {manifest['model']['id']!r}"
        )
    return manifest


def load_index_folder(folder: Path, expected_model: str | None = None, verify: bool = True) -> Index:
    """Load one build folder, checking its manifest, files (checksums), counts and model."""
    import faiss

    manifest = _read_manifest(folder, expected_model)
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if not path.exists():
            raise IndexLoadError(f"{path} is missing; run `restake-qa build --force`")
        if verify and sha256_file(path) != digest:
            raise IndexLoadError(f"{path} is corrupted (checksum mismatch); run `restake-qa build --force`")
    counts = manifest["counts"]
    try:
        chunks, tokens = [], []
        with open(folder / "chunks.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                tokens.append(tuple(row.pop("lexical_tokens")))
                row["path"] = tuple(row["path"])
                chunks.append(Chunk(**row))
        sections = []
        for row in json.loads((folder / "sections.json").read_text("utf-8")):
            row["path"] = tuple(row["path"])
            row["lines"] = tuple(row["lines"])
            row["links"] = tuple(Link(**link) for link in row["links"])
            row["attachments"] = tuple(tuple(a) for a in row["attachments"])
            row["blocks"] = tuple(
                Block(**{**b, "cells": tuple(b["cells"]), "links": tuple(b.get("links", ()))})
                for b in row.get("blocks", ())
            )
            row["tables"] = tuple(tuple(t) for t in row.get("tables", ()))
            sections.append(Section(**row))
        with open(folder / "sentences.jsonl", encoding="utf-8") as fh:
            sentences = [Sentence(**json.loads(line)) for line in fh]
        sentence_vectors = np.load(folder / "sentences.npy")
        heading_vectors = np.load(folder / "headings.npy")
        title_vectors = np.load(folder / "titles.npy")
        vectors = faiss.read_index(str(folder / "vectors.faiss"))
        lexical = LexicalIndex.load(folder / "lexical", len(chunks))
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:  # unreadable: one problem to the user
        raise IndexLoadError(
            f"{folder} cannot be read ({type(exc).__name__}: {exc}); run `restake-qa build --force`"
        ) from None
    dim = int(manifest["model"]["dimension"])
    if (
        len(chunks) != counts["chunks"]
        or vectors.ntotal != counts["chunks"]
        or vectors.d != dim
        or len(tokens) != len(chunks)
    ):
        raise IndexLoadError(
            f"{folder}: manifest says {counts['chunks']} chunks of dimension {dim}, files hold "
            f"{len(chunks)} chunks and {vectors.ntotal} vectors of dimension {vectors.d}; "
            "run `restake-qa build --force`"
        )
    if (
        len(sections) != counts["sections"]
        or len(sentences) != counts.get("sentences", len(sentences))
        or sentence_vectors.shape != (len(sentences), dim)
        or heading_vectors.shape != (len(sections), dim)
        or title_vectors.shape != (len(sections), dim)
    ):
        raise IndexLoadError(
            f"{folder}: manifest says {counts['sections']} sections and {counts.get('sentences')} "
            f"sentences of dimension {dim}, files hold {len(sections)} sections, {len(sentences)} "
            f"sentences and sentence vectors of shape {sentence_vectors.shape}; run `restake-qa build --force`"
        )
    keys = {s.key for s in sections}
    orphan = next((c for c in chunks if c.section_key not in keys), None)
    if orphan is not None:
        raise IndexLoadError(
            f"{folder}: chunk {orphan.id} names section {orphan.section_key}, which "
            "sections.json lacks; run `restake-qa build --force`"
        )
    return Index(
        path=folder,
        manifest=manifest,
        chunks=tuple(chunks),
        chunk_tokens=tuple(tokens),
        sections=tuple(sections),
        vectors=vectors,
        lexical=lexical,
        sentences=tuple(sentences),
        sentence_vectors=sentence_vectors,
        heading_vectors=heading_vectors,
        title_vectors=title_vectors,
        section_by_key={s.key: s for s in sections},
    )

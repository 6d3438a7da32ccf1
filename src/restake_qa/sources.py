"""The corpus files a build was made from, kept inside the build (``builds/<version>/sources/``).

A build copies the files its corpus hash covers (:func:`restake_qa.corpus.build_inputs`: the
pages, ``corpus.toml``, the components files, the glossary and synonyms) into its folder,
checksummed by its manifest like every other file. Rolling back to a build can then restore
the content together with the index (:func:`restore_sources`), so that the next build does
not bring the replaced content back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .corpus import build_inputs, component_files
from .fsutil import fsync_dir
from .text import tool_files

SOURCES = "sources"
PAGE_SUFFIXES = (".md", ".mdx")


def _digest(files: dict[str, bytes]) -> str:
    """``fsutil.files_digest`` of files already read."""
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def read_sources(corpus_dir: Path, corpus_sha256: str) -> dict[str, bytes] | None:
    """The corpus files as they are now, or None if they no longer hash to ``corpus_sha256``
    (they changed while a build read them: that build keeps no sources)."""
    files: dict[str, bytes] = {}
    for path in build_inputs(corpus_dir):
        try:
            files[path.name] = path.read_bytes()
        except FileNotFoundError:
            continue
    return files if _digest(files) == corpus_sha256 else None


def write_sources(build_folder: Path, files: dict[str, bytes]) -> None:
    folder = build_folder / SOURCES
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)


def has_sources(build_folder: Path) -> bool:
    return (build_folder / SOURCES).is_dir()


def _managed(corpus_dir: Path) -> list[Path]:
    """The corpus files a restore may replace or set aside: pages and the configuration."""
    names = {p.name for p in [*tool_files(corpus_dir), *component_files(corpus_dir)]} | {"corpus.toml"}
    return sorted(p for p in corpus_dir.iterdir() if p.is_file() and (p.suffix in PAGE_SUFFIXES or p.name in names))


def keep_files(paths: list[Path], keep_dir: Path, note: dict[str, Any]) -> Path | None:
    """Copy ``paths`` into ``keep_dir`` with a ``kept.json`` saying why; None if nothing to keep."""
    if not paths:
        return None
    keep_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copy2(path, keep_dir / path.name)
    note = {**note, "kept_at": datetime.now(UTC).isoformat(timespec="seconds"), "files": [p.name for p in paths]}
    (keep_dir / "kept.json").write_text(json.dumps(note, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    fsync_dir(keep_dir)
    return keep_dir


def restore_sources(build_folder: Path, corpus_dir: Path, keep_dir: Path, note: dict[str, Any]) -> dict[str, Any]:
    """Make the corpus folder hold exactly the build's sources: files that differ are replaced,
    pages the build did not have are removed. Every file replaced or removed is first copied
    into ``keep_dir`` (nothing is lost). The new contents are staged as temporary files before
    any is renamed into place."""
    folder = build_folder / SOURCES
    wanted = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    current = {p.name: p for p in _managed(corpus_dir)}
    changed = [name for name, data in wanted.items() if name not in current or current[name].read_bytes() != data]
    removed = [name for name in current if name not in wanted]
    kept = keep_files([current[n] for n in [*changed, *removed] if n in current], keep_dir, note)
    staged = []
    try:
        for name in changed:
            tmp = corpus_dir / f".{name}.restore.tmp"
            tmp.write_bytes(wanted[name])
            staged.append((tmp, corpus_dir / name))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    for name in removed:
        current[name].unlink()
    fsync_dir(corpus_dir)
    return {"restored": changed, "removed": removed, "kept": str(kept) if kept else None}

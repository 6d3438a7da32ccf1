"""The corpus pages as the admin console manages them: checking an uploaded page, previewing
it against the live index without publishing anything, saving it (the replaced file kept),
rolling back content and index together, and the list of builds with their change reports.

Kept files live in ``<data_dir>/page-versions/<time>-<why>/`` (with a ``kept.json`` saying
why): the file an upload replaced, and the files a rollback replaced or removed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .build import rollback
from .chunking import ChunkerSettings, chunk_section, section_sentences
from .config import PACKAGE_DIR
from .corpus import Section, load_corpus_config, parse_page_report
from .errors import UploadError
from .fsutil import file_lock, write_atomic
from .index import Index, builds_dir, current_version, live_manifest
from .sources import has_sources, keep_files, restore_sources
from .text import TextTools

#: Page file names: ``<slug>.<lang>.md`` (restaking.zh-tw.md, restaking.en.md), lower case.
PAGE_NAME = re.compile(r"(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<lang>[a-z]{2,3}(?:-[a-z0-9]{2,8})?)\.md")
MAX_NAME_CHARS = 100
VERSIONS = "page-versions"
#: Kept-file folders beyond this many (the oldest) are deleted.
KEEP_VERSIONS = 100


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def versions_dir(data_dir: Path) -> Path:
    return data_dir / VERSIONS


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


# checking an upload ---------------------------------------------------------------------------
def check_name(name: str) -> str:
    """The page's language from its file name; :class:`UploadError` for any other name."""
    if not name or len(name) > MAX_NAME_CHARS or any(c in name for c in "/\\\0") or name.startswith("."):
        raise UploadError(
            f"{name[:MAX_NAME_CHARS]!r} is not a plain file name; send a name like restaking.zh-tw.md "
            "(no folders, no leading dot)",
            400,
            "bad_file_name",
        )
    if not name.endswith(".md"):
        raise UploadError(f"{name!r} is not a markdown page; only .md files are accepted", 415, "not_markdown")
    match = PAGE_NAME.fullmatch(name)
    if match is None:
        raise UploadError(
            f"{name!r} does not follow the corpus's names <slug>.<lang>.md in lower case (e.g. restaking.zh-tw.md)",
            400,
            "bad_file_name",
        )
    return match.group("lang")


def decode_page(name: str, data: bytes, limit: int) -> str:
    if len(data) > limit:
        raise UploadError(
            f"{name} is {len(data)} bytes, over the {limit}-byte limit (RESTAKE_QA_UPLOAD_MAX_BYTES)",
            413,
            "page_too_large",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadError(f"{name} is not UTF-8 text (byte {exc.start}); save it as UTF-8", 415, "not_utf8") from None


def writable_corpus(corpus_dir: Path) -> None:
    if corpus_dir.resolve() == (PACKAGE_DIR / "corpus").resolve():
        raise UploadError(
            "the corpus is the copy shipped inside the package; set RESTAKE_QA_CORPUS_DIR to a folder of your own",
            409,
            "corpus_read_only",
        )


# the preview ----------------------------------------------------------------------------------
def _sentences(section: Section) -> list[str]:
    return [x.text for x in section_sentences(section)]


def preview(
    name: str,
    data: bytes,
    corpus_dir: Path,
    index: Index | None,
    tools: TextTools,
    chunker: ChunkerSettings,
    limit: int,
) -> dict[str, Any]:
    """What saving ``data`` as ``name`` would do, against the live index; writes nothing.

    Raises :class:`UploadError` (name, type, size) or ``CorpusError`` (the page does not parse);
    problems that only a person can judge are ``warnings``, those that forbid saving ``errors``."""
    lang = check_name(name)
    text = decode_page(name, data, limit)
    report = parse_page_report(text, name, load_corpus_config(corpus_dir))
    new = {s.anchor: s for s in report.sections}
    live = {s.anchor: s for s in (index.sections if index else ()) if s.source == name}
    errors = []
    declared = report.sections[0].lang.lower()
    if declared != lang:
        errors.append(f"the file name says the page is in {lang!r} but its front matter says lang: {declared}")
    warnings = [{"line": w.line, "kind": w.kind, "message": w.message} for w in report.warnings]
    sections, changes = [], []
    for anchor, s in new.items():
        old = live.get(anchor)
        status = "added" if old is None else "unchanged" if (old.text, old.title) == (s.text, s.title) else "changed"
        chunks = chunk_section(s, tools, chunker)
        sections.append(
            {
                "anchor": anchor,
                "title": s.title,
                "level": s.level,
                "lines": list(s.lines),
                "url": s.url,
                "status": status,
                "chunks": len(chunks),
                "sentences": len(section_sentences(s)),
                "chars": len(s.text),
            }
        )
        if old is not None and status == "changed":
            before, after = _sentences(old), _sentences(s)
            ops = difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
            changes.append(
                {
                    "anchor": anchor,
                    "title": s.title,
                    "title_before": old.title if old.title != s.title else None,
                    "removed": [x for tag, i, j, _, _ in ops if tag in ("replace", "delete") for x in before[i:j]],
                    "added": [x for tag, _, _, i, j in ops if tag in ("replace", "insert") for x in after[i:j]],
                }
            )
    removed = [{"anchor": a, "title": s.title, "url": s.url} for a, s in live.items() if a not in new]
    for r in removed:
        warnings.append(
            {
                "line": None,
                "kind": "anchor_removed",
                "message": f"{{#{r['anchor']}}} ({r['title']}) is on the live page but not in this file; "
                "links to it will break",
            }
        )
    path = corpus_dir / name
    current = path.read_bytes() if path.is_file() else None
    return {
        "name": name,
        "lang": lang,
        "page_url": report.sections[0].page_url,
        "bytes": len(data),
        "sha256": sha256(data),
        "replaces": None if current is None else {"bytes": len(current), "sha256": sha256(current)},
        "identical": current == data,
        "live_sections": len(live),
        "sections": sections,
        "changes": changes,
        "removed": removed,
        "warnings": warnings,
        "errors": errors,
        "can_save": not errors,
    }


# saving, keeping, rolling back ----------------------------------------------------------------
def _prune_versions(data_dir: Path) -> None:
    folders = sorted(p for p in versions_dir(data_dir).iterdir() if p.is_dir())
    for old in folders[:-KEEP_VERSIONS]:
        shutil.rmtree(old, ignore_errors=True)


def save_page(
    name: str, data: bytes, corpus_dir: Path, data_dir: Path, expected_sha256: str | None, check: Callable[[], None]
) -> dict[str, Any]:
    """Write ``data`` into the corpus as ``name``, keeping the file it replaces. ``check`` is
    the full validation (the preview, raising on errors); ``expected_sha256`` is what the file
    held when the preview was made ("" for no file): if it changed since, nothing is written."""
    writable_corpus(corpus_dir)
    check()
    path = corpus_dir / name
    with file_lock(data_dir / "corpus.lock"):
        current = path.read_bytes() if path.is_file() else None
        if expected_sha256 is not None and expected_sha256 != (sha256(current) if current is not None else ""):
            raise UploadError(
                f"{name} changed in the corpus since the preview; preview the upload again", 409, "page_changed"
            )
        kept = None
        if current is not None:
            note = {"why": "upload", "replaced_by_sha256": sha256(data), "live_version": current_version(data_dir)}
            kept = keep_files([path], versions_dir(data_dir) / f"{_stamp()}-upload-{name}", note)
        write_atomic(path, data)
        if versions_dir(data_dir).is_dir():
            _prune_versions(data_dir)
    return {"name": name, "bytes": len(data), "sha256": sha256(data), "kept": str(kept) if kept else None}


def rollback_content(data_dir: Path, corpus_dir: Path, expected_model: str | None) -> dict[str, Any]:
    """Make the previous build live again and put its sources back into the corpus (the files
    replaced or removed are kept). A build without sources, or a read-only corpus, rolls back
    the index alone; ``content`` then says why."""
    before = current_version(data_dir)
    outcome: dict[str, Any] = {"content": None, "content_note": None}

    def restore(folder: Path) -> None:
        if not has_sources(folder):
            outcome["content_note"] = f"build {folder.name} kept no copy of its sources; the corpus is unchanged"
            return
        try:
            writable_corpus(corpus_dir)
        except UploadError as exc:
            outcome["content_note"] = str(exc)
            return
        note = {"why": "rollback", "from_version": before, "to_version": folder.name}
        with file_lock(data_dir / "corpus.lock"):
            keep = versions_dir(data_dir) / f"{_stamp()}-rollback-{before}"
            outcome["content"] = restore_sources(folder, corpus_dir, keep, note)

    version = rollback(data_dir, expected_model=expected_model, before_publish=restore)
    return {"version": version, "rolled_back_from": before, **outcome}


# builds and the live index's pages ------------------------------------------------------------
def list_builds(data_dir: Path) -> dict[str, Any]:
    """The builds on disk, newest first, with their change reports, and the rollback target."""
    folder = builds_dir(data_dir)
    live = current_version(data_dir)
    out = []
    found = folder.iterdir() if folder.is_dir() else iter(())
    for name in sorted((p.name for p in found if p.is_dir() and not p.name.startswith(".")), reverse=True):
        try:
            manifest = json.loads((folder / name / "manifest.json").read_text("utf-8"))
        except (OSError, ValueError):
            out.append({"version": name, "live": name == live, "error": "incomplete or unreadable manifest"})
            continue
        out.append(
            {
                "version": name,
                "live": name == live,
                "built_at": manifest.get("built_at"),
                "previous": manifest.get("previous"),
                "model": (manifest.get("model") or {}).get("id"),
                "counts": manifest.get("counts"),
                "changes": manifest.get("changes"),
                "sources": has_sources(folder / name),
            }
        )
    manifest = live_manifest(data_dir) or {}
    target = manifest.get("previous")
    return {
        "live": live,
        "rollback_to": target if target and (folder / target).is_dir() else None,
        "builds": out,
    }


def page_list(index: Index) -> list[dict[str, Any]]:
    """The live index's pages (one per corpus file), each with its language and counts."""
    pages: dict[str, dict[str, Any]] = {}
    for s in index.sections:
        page = pages.setdefault(
            s.source,
            {"source": s.source, "lang": s.lang, "title": s.title, "url": s.page_url, "sections": 0, "chunks": 0},
        )
        page["sections"] += 1
    for c in index.chunks:
        pages[c.source]["chunks"] += 1
    return list(pages.values())


def page_detail(index: Index, source: str) -> dict[str, Any] | None:
    """Sections → chunks → sentences of one page of the live index; None if it has no such page."""
    sections = [s for s in index.sections if s.source == source]
    if not sections:
        return None
    chunks: dict[str, list[dict[str, Any]]] = {}
    for c in index.chunks:
        if c.source == source:
            chunks.setdefault(c.section_key, []).append(
                {"id": c.id, "text": c.display_text, "tokens": c.tokens, "span": [c.start, c.end]}
            )
    sentences: dict[str, list[str]] = {}
    for x in index.sentences:
        if x.source == source:
            sentences.setdefault(x.section_key, []).append(x.text)
    return {
        "source": source,
        "lang": sections[0].lang,
        "url": sections[0].page_url,
        "index_version": index.version,
        "sections": [
            {
                "key": s.key,
                "anchor": s.anchor,
                "title": s.title,
                "level": s.level,
                "path": list(s.path),
                "url": s.url,
                "lines": list(s.lines),
                "chunks": chunks.get(s.key, []),
                "sentences": sentences.get(s.key, []),
            }
            for s in sections
        ],
    }

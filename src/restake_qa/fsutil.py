"""Writing files so that a crash never leaves half of anything: atomic files and folders,
fsync, and advisory locks. Used by the model cache (``models/``) and the index builds
(``build.py``)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Infix of the temporary sibling a folder is built in (``.<name>.partial-<random>``).
PARTIAL_INFIX = ".partial-"


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        else:
            fsync_dir(path)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename, durable before and after."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, data: Any, *, sync: bool = False) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_digest(paths: list[Path]) -> str:
    """sha256 over the names and contents of ``paths`` (missing files count as absent)."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        digest.update(path.name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


class LockBusy(Exception):
    """The lock is held by someone else; ``holder`` is what they wrote into the lock file."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextmanager
def file_lock(path: Path, *, wait: float | None = None, on_busy: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (an flock: the kernel releases it when the
    holder dies, even by SIGKILL). ``wait=None`` blocks; otherwise poll for up to ``wait``
    seconds (calling ``on_busy(holder)`` once) and raise :class:`LockBusy`. The holder's pid
    and start time are written into the file for whoever waits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        if wait is None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + wait
            told = False
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    if time.monotonic() >= deadline:
                        raise LockBusy(holder) from None
                    if on_busy and not told:
                        on_busy(holder)
                        told = True
                    time.sleep(0.1)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the flock


def remove_partials(target: Path) -> None:
    """Delete temporary folders left by interrupted :func:`replace_folder` calls for ``target``
    (call it under the target's lock)."""
    for leftover in target.parent.glob(f".{target.name}{PARTIAL_INFIX}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _chmod_public(directory: Path) -> None:
    """mkdtemp makes 0700 folders; give the result the usual umask-based mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)


def replace_folder(target: Path, fill: Callable[[Path], dict[str, Any]], marker_name: str) -> None:
    """Build a folder atomically (call it under the target's lock): ``fill`` writes it into a
    temporary sibling and returns its marker's content; the marker is written last, once the
    data is durable, and the folder then replaces ``target`` (a leftover there is moved aside
    first). A folder without its marker is never complete."""
    parent = target.parent
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL_INFIX}", dir=parent))
    try:
        _chmod_public(work)
        marker = fill(work)
        fsync_tree(work)  # the data is durable before the marker says "complete"
        write_json(work / marker_name, marker, sync=True)
        fsync_dir(work)
        if target.exists() or target.is_symlink():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL_INFIX}", dir=parent))
            os.replace(target, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(work, target)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

"""Giving freed memory back to the operating system after an index is replaced.

Nothing keeps a replaced index alive (tests/test_memory.py checks that every old snapshot is
garbage after a swap), yet the process's resident memory used to stay at the peak of the last
reindex: the allocator keeps the pages of freed objects (chunks, tokens, BM25 and FAISS
buffers, the build's temporaries) for reuse, in every thread's arena. After a swap the engine
collects cycles and asks glibc to return free pages (``malloc_trim``); measured over ten
reindexes of a 200–330 KB page, the process then returns to its level before each build
instead of holding the build's peak (bench figures in the README).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from typing import Any

_libc: Any = None


def _malloc_trim() -> Any:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _libc = lib if hasattr(lib, "malloc_trim") else False
            except OSError:
                pass
    return _libc.malloc_trim if _libc else None


def release_freed_memory() -> bool:
    """Collect garbage cycles and return the allocator's free pages to the system; True if
    the allocator could be asked (glibc), False elsewhere (nothing else to do there)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)  # ctypes releases the GIL for the call: requests go on meanwhile
    return True

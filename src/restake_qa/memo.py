"""A bounded, thread-safe memo for pure functions of a text (script conversion, tokenisation,
question analysis), so that what every question repeats — section titles analysed for their
intent, answer units normalised, the same words tokenised — is computed once per process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


#: Texts longer than this are not remembered (a whole section converted while a build chunks
#: it is not asked again): the memo stays small (16,384 entries of ≤ 512 characters: < 40 MB).
MAX_KEY_CHARS = 512


class Memo(Generic[V]):
    """Results of one pure function by key, the ``size`` most recently used (LRU); a text key
    longer than :data:`MAX_KEY_CHARS`, or any key when ``size`` is 0, is computed every time."""

    def __init__(self, size: int = 16384) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value for ``key``, computed by ``compute()`` the first time (outside the lock:
        two threads may compute the same value once each, never a wrong one)."""
        if not self.size or (isinstance(key, str) and len(key) > MAX_KEY_CHARS):
            return compute()
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                self.hits += 1
                return self._values[key]
        value = compute()
        with self._lock:
            self.misses += 1
            self._values[key] = value
            if len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._values)

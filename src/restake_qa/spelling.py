"""One typo away from a word (:class:`Typos`, also the pages' words in coverage.py), and misspelt
everyday English words (wich, waht, becuase): a question's word one typo away from one of the
commonest English words says how something is asked, never what about."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

#: How many of wordfreq's commonest English words count as everyday words.
COMMON_WORDS = 500


class Typos:
    """Words one typo away from ``targets``: a letter missing, one too many, one replaced, or two
    neighbours swapped (platfroms → platforms); ``known`` are the words (and forms) a swap or an
    extra letter may land on."""

    def __init__(self, targets: Iterable[str], known: AbstractSet[str]) -> None:
        self.known = known
        self.targets = frozenset(targets)
        self.origins: dict[str, set[str]] = {}  # a target with one letter deleted → the targets
        for w in self.targets:
            for i in range(len(w)):
                self.origins.setdefault(w[:i] + w[i + 1 :], set()).add(w)

    def near(self, word: str) -> bool:
        if word in self.origins:
            return True  # a letter missing: wich → which
        if any(word[:i] + word[i + 1] + word[i] + word[i + 2 :] in self.known for i in range(len(word) - 1)):
            return True  # two neighbours swapped: waht → what
        for i in range(len(word)):
            shorter = word[:i] + word[i + 1 :]
            if shorter in self.known or any(t[:i] + t[i + 1 :] == shorter for t in self.origins.get(shorter, ())):
                return True  # one letter too many, or one replaced at the same place
        return False

    def corrections(self, word: str) -> set[str]:
        """The targets one typo away from ``word`` (opperator → operator)."""
        found = set(self.origins.get(word, ()))  # a letter missing
        swapped = (word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1))
        found.update(w for w in swapped if w in self.targets)  # two neighbours swapped
        for i in range(len(word)):
            shorter = word[:i] + word[i + 1 :]
            if shorter in self.targets:
                found.add(shorter)  # one letter too many
            found.update(t for t in self.origins.get(shorter, ()) if t[:i] + t[i + 1 :] == shorter)  # one replaced
        found.discard(word)
        return found


@functools.cache
def _common() -> tuple[frozenset[str], Typos]:
    from wordfreq import top_n_list

    words = frozenset(w for w in top_n_list("en", COMMON_WORDS) if w.isalpha() and len(w) >= 3)
    return words, Typos(words, words)


def misspelt_common_word(word: str) -> bool:
    """Whether ``word`` (lower case, not itself a common word) is one of the commonest English
    words with a letter missing, one too many, one replaced, or two neighbours swapped."""
    words, typos = _common()
    if len(word) < 4 or word in words or not word.isalpha():  # (three letters are near everything)
        return False
    return typos.near(word)

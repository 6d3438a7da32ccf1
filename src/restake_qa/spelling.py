"""Misspelt everyday English words (wich, waht, becuase): a question's word one typo away from one
of the commonest English words says how something is asked, never what about."""

from __future__ import annotations

import functools

#: How many of wordfreq's commonest English words count as everyday words.
COMMON_WORDS = 500


@functools.cache
def _common() -> tuple[frozenset[str], dict[str, frozenset[int]]]:
    from wordfreq import top_n_list

    words = frozenset(w for w in top_n_list("en", COMMON_WORDS) if w.isalpha() and len(w) >= 3)
    deletes: dict[str, set[int]] = {}  # a common word with one letter deleted → where
    for w in words:
        for i in range(len(w)):
            deletes.setdefault(w[:i] + w[i + 1 :], set()).add(i)
    return words, {k: frozenset(v) for k, v in deletes.items()}


def misspelt_common_word(word: str) -> bool:
    """Whether ``word`` (lower case, not itself a common word) is one of the commonest English
    words with a letter missing, one too many, one replaced, or two neighbours swapped."""
    words, deletes = _common()
    if len(word) < 4 or word in words or not word.isalpha():  # (three letters are near everything)
        return False
    if word in deletes:
        return True  # a letter missing: wich → which
    if any(word[:i] + word[i + 1] + word[i] + word[i + 2 :] in words for i in range(len(word) - 1)):
        return True  # two neighbours swapped: waht → what
    for i in range(len(word)):
        shorter = word[:i] + word[i + 1 :]
        if shorter in words or i in deletes.get(shorter, ()):
            return True  # one letter too many, or one replaced
    return False

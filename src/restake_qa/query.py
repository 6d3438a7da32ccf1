"""What a question is made of for retrieval: its query tokens (with the page's words for what it
says in other words), the text that is embedded, the tokens that say what it is about, and how
much of it the pages cover. Retrieval (:mod:`restake_qa.retrieval`) scores with them."""

from __future__ import annotations

import re

from .lexical import LexicalIndex
from .text import TextTools

# A Latin word that names something (EigenLayer, USDC, EIP-1559, Cardano): mixed case,
# a digit, or a capital that does not start a sentence.
_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9.+'-]*")


class QueryTerms:
    """A question's terms against one index's lexical statistics and heading words."""

    def __init__(self, lexical: LexicalIndex, tools: TextTools, heading_words: frozenset[str]) -> None:
        self._lexical = lexical
        self.tools = tools
        self._heading_words = heading_words

    def idf(self, token: str) -> float:
        """BM25's IDF of ``token`` over the chunks (the highest for a token they never use)."""
        return self._lexical.idf(token)

    def _worth_expanding(self, said: str, word: str) -> bool:
        """An expansion helps unless what the question said is already at least as common in
        the pages as the word it expands to (ETH needs no 以太幣; operators needs 營運者)."""
        said_tokens = self.tools.lexical_tokens(said)
        if not said_tokens or not all(t in self._lexical for t in said_tokens):
            return True
        df_said = min(self._lexical.df(t) for t in said_tokens)
        word_tokens = self.tools.lexical_tokens(word)
        df_word = max((self._lexical.df(t) for t in word_tokens if t in self._lexical), default=0)
        return df_said < df_word

    def expansions(self, question: str) -> list[str]:
        """The page's words for what ``question`` says in other words, those worth adding."""
        return [word for said, word in self.tools.expansions(question) if self._worth_expanding(said, word)]

    def tokens(self, question: str, words: list[str] | None = None) -> list[str]:
        """The lexical query: the question's tokens and its expansions' (``words``)."""
        return self.tools.query_tokens(question, self.expansions(question) if words is None else words)

    @staticmethod
    def embedded(question: str, language: str, words: list[str]) -> str:
        """What is embedded: an English question with the page's ``words`` for it appended."""
        if language != "en" or not words:
            return question
        return f"{question}（{'、'.join(words)}）"

    def content(self, question: str, language: str, tokens: list[str]) -> list[str]:
        """The query tokens that say what the question is about. In an English question an
        ordinary English word cannot occur in the Chinese page (its meaning arrives through the
        expansions), so only names (EigenLayer, USDC, Cardano) and words the pages use count."""
        if language != "en":
            return tokens
        names: set[str] = set()
        for m in _WORD.finditer(question):
            word, before = m.group(0), question[: m.start()].rstrip()
            starts_sentence = not before or before[-1] in ".?!。？！:：\"'“‘(（"
            if (
                any(c.isdigit() for c in word)
                or any(c.isupper() for c in word[1:])
                or (word[0].isupper() and not starts_sentence)
            ):
                names.update(self.tools.lexical_tokens(word))
        return [t for t in tokens if not t.isascii() or t in names or self._known(t)]

    def _known(self, token: str) -> bool:
        """Whether the indexed pages use ``token``: in their text or in a heading (anchors)."""
        return token in self._lexical or token in self._heading_words

    def coverage(self, content: list[str]) -> float:
        """IDF-weighted share of ``content`` tokens that the indexed pages use at all."""
        if not content:
            return 0.0
        mass = sum(self.idf(t) for t in content)
        known = sum(self.idf(t) for t in content if self._known(t))
        return known / mass if mass else 0.0

"""What the query path remembers (memo.py): script conversion, tokens, expansions and question
analyses are computed once per text and give exactly what computing them again gives; the
memo is bounded; callers can never change a remembered value."""

from __future__ import annotations

import json
import threading

from restake_qa.analysis import QuestionAnalyzer
from restake_qa.build import build_index
from restake_qa.index import load_index
from restake_qa.memo import MAX_KEY_CHARS, Memo
from restake_qa.text import _english_needle, _english_pattern, load_text_tools

from helpers import CORPUS, ROOT, make_settings


def _questions() -> list[str]:
    out: list[str] = []
    for name in ("questions.jsonl", "questions_holdout.jsonl", "answers.jsonl", "refusals.jsonl"):
        with open(ROOT / "tests" / "data" / name, encoding="utf-8") as fh:
            out += [json.loads(line)["question"] for line in fh if line.strip()]
    return list(dict.fromkeys(out))


def test_a_memo_computes_once_keeps_the_most_recent_and_skips_long_texts():
    memo: Memo[int] = Memo(size=2)
    calls: list[str] = []

    def compute(key: str) -> int:
        calls.append(key)
        return len(key)

    assert memo.get("a", lambda: compute("a")) == 1
    assert memo.get("a", lambda: compute("a")) == 1
    assert calls == ["a"] and memo.hits == 1
    memo.get("bb", lambda: compute("bb"))
    memo.get("a", lambda: compute("a"))  # a is now the most recent
    memo.get("ccc", lambda: compute("ccc"))  # evicts bb
    assert len(memo) == 2
    memo.get("a", lambda: compute("a"))
    memo.get("bb", lambda: compute("bb"))
    assert calls == ["a", "bb", "ccc", "bb"]
    long = "長" * (MAX_KEY_CHARS + 1)
    memo.get(long, lambda: compute(long))
    memo.get(long, lambda: compute(long))
    assert calls[-2:] == [long, long] and long not in memo._values


def test_a_memo_shared_by_threads_gives_each_the_right_value():
    memo: Memo[str] = Memo(size=64)
    errors: list[str] = []

    def work(seed: int) -> None:
        for i in range(2000):
            key = f"k{(i * seed) % 200}"
            if memo.get(key, lambda key=key: key.upper()) != key.upper():
                errors.append(key)

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 3, 7, 11)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(memo) <= 64


def test_remembered_tokens_and_expansions_are_what_a_fresh_computation_gives():
    tools = load_text_tools(CORPUS)
    for question in _questions():
        first = (tools.lexical_tokens(question), tools.expansions(question), tools.to_simplified(question))
        again = (tools.lexical_tokens(question), tools.expansions(question), tools.to_simplified(question))
        fresh = (tools._lexical_tokens(question), tools._expansions_of(question), tools._t2s.convert(question))
        assert first == again == fresh, question
    # a caller that extends the list it got does not change what the next caller gets
    tokens = tools.lexical_tokens("再質押有什麼風險？")
    tokens += ["extra"]
    assert "extra" not in tools.lexical_tokens("再質押有什麼風險？")


def test_the_quick_test_before_each_english_pattern_never_rules_out_a_match():
    tools = load_text_tools(CORPUS)
    phrases = [p for term in tools.glossary for p in (term.english, *term.aliases) if p and p.isascii()]
    phrases += [o for others in tools.synonyms.values() for o in others if o.isascii()]
    texts = [q.lower() for q in _questions()] + [
        p.lower() + suffix for p in phrases for suffix in ("", "s", "d", "ing")
    ]
    checked = 0
    for phrase in phrases:
        pattern, needle = _english_pattern(phrase), _english_needle(phrase)
        for text in texts:
            if pattern.search(text):
                assert needle in text, (phrase, text)
                checked += 1
    assert checked > len(phrases)  # every phrase matched itself at least


def test_an_analysis_is_computed_once_per_text_and_equals_a_fresh_one():
    tools = load_text_tools(CORPUS)
    analyzer = QuestionAnalyzer(tools)
    fresh = QuestionAnalyzer(load_text_tools(CORPUS))
    for question in _questions()[:120]:
        assert analyzer.analyze(question) == fresh._analyze(question)
    misses = analyzer._memo.misses
    for question in _questions()[:120]:
        analyzer.analyze(question)
    assert analyzer._memo.misses == misses and analyzer._memo.hits >= 120


def test_a_build_leaves_the_question_memos_as_they_were(tmp_path, hash_embedder):
    """A build's texts are met once: they must not fill the memos a serving process's questions use
    (a reindex of a page of new texts would otherwise grow the process by the memos' capacity)."""
    tools = load_text_tools(CORPUS)
    tools.lexical_tokens("再質押有什麼風險？")
    before = (len(tools._simplified), len(tools._lexical))
    settings = make_settings(tmp_path)
    report = build_index(CORPUS, settings.data_path, hash_embedder, settings, tools=tools)
    assert report.chunks > 50  # the build tokenised and converted every chunk with these tools
    assert (len(tools._simplified), len(tools._lexical)) == before
    # the unremembered view gives the same tokens as the remembering tools
    view = tools.unremembered()
    text = load_index(settings.data_path).chunks[5].display_text
    assert view.lexical_tokens(text) == tools.lexical_tokens(text) and len(view._lexical) == 0

from __future__ import annotations

from restake_qa.text import detect_language


def test_simplified_and_traditional_questions_share_tokens(tools):
    assert tools.lexical_tokens("再質押有哪些風險？") == tools.lexical_tokens("再质押有哪些风险？")
    assert tools.lexical_tokens("營運者的工作") == tools.lexical_tokens("营运者的工作")


def test_glossary_terms_are_single_tokens(tools):
    tokens = tools.lexical_tokens("流動性再質押代幣和主動驗證服務")
    assert "流动性再质押代币" in tokens and "主动验证服务" in tokens


def test_mixed_latin_terms_match(tools):
    tokens = tools.lexical_tokens("EigenLayer 與 eETH、LST 的關係")
    assert {"eigenlayer", "eeth", "lst"} <= set(tokens)


def test_english_questions_expand_through_the_glossary(tools):
    assert "營運者" in tools.expand_query("What do operators do?")
    assert "罰沒" in tools.expand_query("Can I get slashed?")
    assert tools.expand_query("What is the weather today?") == []


def test_segments_keep_urls_and_numbers_whole(tools):
    text = "見 https://vitalik.eth.limo/general/2023/05/21/dont_overload.html 與 2.5 ETH"
    words = [w for w, _, _ in tools.segments(text)]
    assert "https://vitalik.eth.limo/general/2023/05/21/dont_overload.html" in words
    assert "2.5" in words
    assert "".join(words) == text


def test_detect_language(tools):
    assert detect_language("再質押有哪些風險？", tools) == "zh-tw"
    assert detect_language("再质押有哪些风险？", tools) == "zh-cn"
    assert detect_language("What is restaking?", tools) == "en"
    assert detect_language("EigenLayer 是什麼", tools) == "zh-tw"


def test_english_stem_meets_comparatives_and_adjectives_with_their_noun():
    from restake_qa.text import stem

    assert stem("riskier") == stem("risky") == stem("risks") == stem("risk")
    assert stem("restaking") == stem("restaked") == stem("restake")
    assert stem("penalties") == stem("penalty") and stem("lsts") == "lst"
    assert stem("any") == "any" and stem("many") == "many"  # short words keep their -y


def test_tools_share_one_loaded_dictionary_but_not_their_added_words(monkeypatch):
    """jieba's dictionary is loaded once per process (every build and engine used to load it
    again); each set of tools still adds its glossary words to a tokenizer of its own."""
    import jieba

    from restake_qa.analysis import QuestionAnalyzer
    from restake_qa.text import Term, TextTools

    TextTools()  # the dictionary is loaded by now, whatever ran before

    def load_again(self, dictionary=None):
        raise AssertionError("jieba's dictionary was loaded a second time")

    monkeypatch.setattr(jieba.Tokenizer, "initialize", load_again)
    with_word = TextTools([Term("霧燈節點", "fog node", (), "")])
    without = TextTools()
    word = with_word.normalize("霧燈節點")  # the tokenizers work on the Simplified form
    assert word in with_word.tokenizer.FREQ and word not in without.tokenizer.FREQ
    assert word in with_word.lexical_tokens("霧燈節點是什麼")
    # the part-of-speech tagger reads the same tags without loading them again, and tags the
    # tools' own words with the tools' tokenizer
    tags = dict(QuestionAnalyzer(with_word)._pos.lcut(word + "是什么"))
    assert word in tags and tags["是"] == "v"

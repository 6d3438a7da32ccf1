"""What an answer quotes, by what the question asks (answer/select.py), on the real page."""

from __future__ import annotations

import pytest

from restake_qa.answer import compose

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retriever(real_engine):
    return real_engine.snapshot().retriever


def test_a_who_question_naming_one_actor_gets_that_actors_row_not_the_whole_table(retriever):
    answer = compose(retriever, "哪些人算是原生再質押者")
    assert answer.layout == "text"
    assert answer.items[0].text.startswith("原生再質押者：")


def test_a_yes_no_question_quotes_the_comparison_table_only_when_it_names_both_sides(retriever):
    # slashing is asked about: the risks table's row, not the staking-vs-restaking rows
    slash = compose(retriever, "slash 是什麼意思 被 slash 的錢就不見了嗎")
    assert slash.items[0].text.startswith("罰款（或「罰沒」）"), [i.text for i in slash.items]
    both = compose(retriever, "再質押是不是比質押風險高？")
    assert "風險" in both.items[0].text and both.citations[0].anchor == "staking-vs-restaking"


def test_steps_start_after_what_the_asker_says_is_done(retriever):
    whole = compose(retriever, "新手要怎麼開始再質押")
    assert whole.layout == "steps" and whole.items[0].text.startswith("1.")
    following = compose(retriever, "我有 0.5 顆 ETH 放在 Lido，拿到 stETH 了，接下來要怎麼再質押？")
    assert following.layout == "steps"
    assert following.items[0].text.startswith("2.") and "LST" in following.items[0].text


def test_a_comparison_about_something_beside_the_comparison_table_quotes_that_thing(retriever):
    # software is in no row of the staking-vs-restaking table; the page says it elsewhere
    software = compose(retriever, "质押者跑的软件和再质押者跑的软件有啥区别？")
    assert software.layout != "table" and "软件" in software.items[0].text
    # the plain comparison still gets the table, and a risk question its risk row
    plain = compose(retriever, "再質押跟一般質押最大的差別到底在哪？")
    # …without the row both sides say alike (「無最低 ETH 限制」 twice): it is no difference
    assert plain.layout == "table" and len(plain.items) == 4
    assert all(len(set(item.cells)) == 2 for item in plain.items), [i.cells for i in plain.items]
    # asked what they share, that row is what answers
    alike = compose(retriever, "staking vs restaking table: which lines are the same on both sides?")
    assert any(len(set(item.cells)) == 1 for item in alike.items), [i.cells for i in alike.items]
    risk = compose(retriever, "再質押是不是比質押風險高？")
    assert "風險" in risk.items[0].text


def test_the_reading_list_answers_questions_asking_for_reading_only(retriever):
    # 延伸閱讀 names EigenLayer in many titles, but says nothing about who else restakes
    who_else = retriever.search("再質押是不是只有 EigenLayer 一家在做？還是有別的選擇")
    assert who_else.hits[0].anchor == "what-are-some-examples-of-restaking"
    assert who_else.hits[0].scores.substance == 1.0
    reading = retriever.search("有推薦的延伸閱讀嗎？想多看一點資料再研究")
    assert reading.analysis.resources and reading.hits[0].anchor == "further-reading"
    # its items keep their links, so the answer carries them
    answer = compose(retriever, "any good further reading on restaking?")
    assert answer.citations[0].anchor == "further-reading"
    assert all(item.links and item.links[0]["url"].startswith("http") for item in answer.items)


def test_words_the_page_repeats_in_two_sections_are_quoted_once(retriever):
    # the English page says EigenLayer's card text in the examples and in other-examples
    answer = compose(retriever, "what does eigenlayer actually offer? the page shows a few cards, pods and stuff")
    texts = [item.text for item in answer.items]
    assert texts and len(texts) == len(set(texts))


def test_a_what_happens_if_question_quotes_the_risk_that_follows(retriever):
    # a consequence question asks about a risk: the slashing row, not the operators' row it names
    misbehaves = compose(retriever, "what happens to my restaked ETH if an operator misbehaves?")
    assert misbehaves.items[0].text.startswith("Penalties (or “slashing”)"), [i.text for i in misbehaves.items]
    chain = compose(retriever, "同一筆 ETH 保了好幾個 AVS，其中一個出事會怎樣？")
    assert chain.items[0].text.startswith("連鎖反應"), [i.text for i in chain.items]


def test_steps_are_those_of_the_column_for_who_asks(retriever):
    # never staked, or holding an LST and not wanting to run a node: the beginners' column
    for question in (
        "ETH 一直躺在硬件钱包里吃灰，从来没质押过。想玩再质押，第一步该干啥？",
        "我在 US 读书，wallet 里有点 stETH，想 restake 但完全不想 run node。按 page 的说法应该怎么 set up？",
    ):
        answer = compose(retriever, question)
        assert answer.layout == "steps" and "LST" in answer.items[0].text, (question, [i.text for i in answer.items])
    # no validator of one's own, and asking whether one must run something: beginners too
    dao = compose(retriever, "我們 DAO 有一筆 stETH，沒有自己的 validator。要怎麼開始 restake？需要自己架 operator 嗎")
    assert dao.layout == "steps" and "LST" in dao.items[0].text, [i.text for i in dao.items]
    # running one's own validator: the advanced users' column, after its first step (staking as a
    # validator), which is done
    solo = compose(retriever, "我自己跑驗證者，要怎麼開始再質押？")
    assert solo.layout == "steps" and [i.text[:1] for i in solo.items] == ["2", "3"], [i.text for i in solo.items]
    assert "比較" in solo.items[0].text and "驗證者" in solo.items[1].text


def test_who_holds_what_the_first_step_gives_starts_at_the_second(retriever):
    holder = compose(retriever, "gm 各位 ser，我纯 Lido 用户，手里一堆 stETH 躺着，想上 restake 这班车，第一步该干啥？")
    assert holder.layout == "steps" and holder.items[0].text.startswith("2.") and "LST" in holder.items[0].text
    # someone with only ETH has done nothing yet
    newcomer = compose(retriever, "钱包里只有 ETH，没节点，想再质押，第一步干啥")
    assert newcomer.layout == "steps" and newcomer.items[0].text.startswith("1."), [i.text for i in newcomer.items]


def test_how_a_party_does_something_is_its_row_and_how_restaking_works_is_the_list_of_parties(retriever):
    # the section titled 「再質押如何運作？」 explains restaking by its list of parties …
    works = compose(retriever, "how does restaking work?")
    assert works.layout == "list" and len(works.items) >= 5
    # … but how an AVS finds operators is one party's row, not every row naming a party
    finding = compose(retriever, "AVS 是怎么找到运营商和质押者的")
    # (an alert quoted comes with the paragraph after it: up to four quotations, not the five rows)
    rows = [i for i in finding.items if i.kind == "row"]
    assert finding.layout == "text" and len(rows) <= 2 and len(finding.items) <= 4, [i.text for i in finding.items]


def test_a_checklist_of_a_path_is_its_steps_in_full(retriever):
    answer = compose(
        retriever, "32 ETH, running my own validator. give me the advanced-user path as a checklist, no fluff"
    )
    assert answer.layout == "steps" and [i.text[:2] for i in answer.items] == ["1.", "2.", "3."]


def test_asking_for_the_simplest_way_to_start_gets_steps(retriever):
    # "the simplest way to start restaking" asks how to begin: the beginners' steps, not one of them
    answer = compose(retriever, "whats the simplest way to start restaking")
    assert answer.layout == "steps" and len(answer.items) >= 2, [i.text for i in answer.items]


def test_a_video_is_quoted_with_the_caption_above_it(retriever):
    # the page gives a video's length in the bold line above it, not in the video's title
    zh = compose(retriever, "那支解釋再質押的影片多長？")
    assert zh.items[0].text == "18 分鐘解釋再質押", [i.text for i in zh.items]
    en = compose(retriever, "how long is the explainer video")
    assert any("7 minutes" in i.text for i in en.items), [i.text for i in en.items]


def test_the_simplest_way_in_is_the_beginners_steps(retriever):
    answer = compose(retriever, "最简单的再质押入门是啥 不想折腾 一两步能搞定的那种")
    assert answer.layout == "steps" and answer.items[0].text.startswith("1. 在 Lido"), [i.text for i in answer.items]


def test_what_an_abbreviation_is_quotes_where_the_page_spells_it_out(retriever):
    # LST is said before, in the claim set aside: the answer spells out LRT, not LST
    answer = compose(retriever, "推特上有人说“LRT 就是套了一层壳的 LST”，先不管对不对，LRT 到底是个啥？")
    assert "(LRT)" in answer.items[0].text, [i.text for i in answer.items]


def test_a_sentence_pointing_back_is_quoted_after_what_it_points_back_to(retriever):
    answer = compose(retriever, "if i delegate to an operator do i get the same reward rate as them")
    texts = [i.text for i in answer.items]
    at = next(j for j, t in enumerate(texts) if t.startswith("This way"))
    assert at > 0 and "delegate" in texts[at - 1], texts


def test_a_question_that_wants_no_videos_is_not_answered_with_one(retriever):
    answer = compose(
        retriever,
        "for a report I only want the written articles from the further reading list, not the videos. which ones are they?",
    )
    assert answer.items and answer.items[0].kind != "video", [i.text for i in answer.items]


def test_a_yes_no_question_about_a_named_party_quotes_what_settles_it(retriever):
    # operators are named, but the question is whether delegators earn more: the note on reward rates
    answer = compose(
        retriever, "我記得頁面寫說把 ETH 委託給營運者的人，拿到的獎勵率反而比營運者高？是這樣嗎，還是我記反了"
    )
    assert any("獎勵率比營運者低" in i.text for i in answer.items), [i.text for i in answer.items]


def test_asking_how_long_a_video_is_puts_the_one_whose_caption_says_it_first(retriever):
    answer = compose(retriever, "那支介紹影片多長？我只有十分鐘")
    assert answer.items[0].text == "18 分鐘解釋再質押", [i.text for i in answer.items]


def test_an_alerts_second_paragraph_continues_its_first(retriever):
    answer = compose(retriever, "if i delegate, do i earn less than the operator?")
    assert any("lower reward rate" in i.text for i in answer.items), [i.text for i in answer.items]


def test_how_much_risk_is_the_risk_level_row(retriever):
    answer = compose(retriever, "restake 會讓我的風險變多少？")
    assert "風險等級" in answer.items[0].text, [i.text for i in answer.items]


def test_an_alerts_title_is_quoted_with_what_it_titles(retriever):
    for question, said in (
        ("页面有个提示框标题叫“以太坊联合创始人正在输入…”，说的是谁啊？他输入了啥", "维塔利克"),
        ("what's the 'co-founder is typing' box about?", "Vitalik"),
    ):
        texts = [i.text for i in compose(retriever, question).items]
        assert any(said in t for t in texts), (question, texts)


def test_a_sure_thing_is_answered_with_the_page_saying_it_is_not(retriever):
    # 穩賺不賠 / "free money" are the page's 「並非沒有風險」 by other words
    for question, said in (("再质押是不是稳赚不赔啊", "并非没有风险"), ("is restaking free money?", "not risk free")):
        answer = compose(retriever, question)
        assert said in answer.items[0].text, (question, [i.text for i in answer.items])


def test_how_the_parties_find_each_other_is_the_marketplace_not_the_row_of_who_is_found(retriever):
    for question, said in (
        ("AVS 是怎么找到运营商和质押者的", "市场"),
        ("新的 AVS 要去哪裡找營運者？", "找到彼此"),
    ):
        answer = compose(retriever, question)
        assert any(said in i.text for i in answer.items), (question, [i.text for i in answer.items])


def test_a_list_of_the_things_a_table_lists_is_that_table(retriever):
    # 缺點 are the page's 風險: the risks table (its first column 「風險」), not the comparison table's risk row
    answer = compose(retriever, "我记得页面有个“再质押的缺点”章节，里面写了哪几条？挨个列一下")
    assert answer.layout == "list" and len(answer.items) == 4 and "罚没" in answer.items[0].text, [
        i.text for i in answer.items
    ]
    # 「有哪些不同」 asks for a comparison, not a list
    assert compose(retriever, "質押跟再質押有哪些不同").layout == "table"


def test_what_one_named_row_does_is_that_row_and_the_kinds_of_rows_are_the_list(retriever):
    # 「哪些事」 asks for the operators' duties: their row, not every row of the actors' table
    duties = compose(retriever, "想轉去當 restake 的 operator。先條列一下，營運者平常要負責哪些事？")
    assert duties.items[0].text.startswith("營運者："), [i.text for i in duties.items]
    # …while asking for the roles, with one named as an example, is the whole table
    roles = compose(retriever, "再質押裡面到底有哪些角色？平台、營運者、質押者一堆名詞，誰是誰")
    assert roles.layout == "list" and len(roles.items) >= 4, [i.text for i in roles.items]


def test_a_sentence_asking_the_reader_to_picture_something_comes_with_what_to_picture(retriever):
    answer = compose(retriever, "假如压根没有再质押这回事，像我这种普通质押者会少了啥？")
    texts = [i.text for i in answer.items]
    at = next((k for k, t in enumerate(texts) if t.startswith("想象两个世界")), None)
    assert at is not None and at + 1 < len(texts) and "在这个拥有再质押的世界里" in texts[at + 1], texts
    # the English page has its tabs' labels between the two: the sentence still comes along
    english = [i.text for i in compose(retriever, "what would be missing in a world without restaking?").items]
    at = next((k for k, t in enumerate(english) if t.startswith("Picture two worlds")), None)
    assert at is not None and any(t.startswith("In this world with restaking") for t in english[at + 1 :]), english


def test_what_happens_if_a_party_does_something_is_not_that_partys_row(retriever):
    # the operators' row says what they are; what follows when one goes offline is elsewhere
    answer = compose(retriever, "帮朋友问：他在当运营商，服务器要是掉线好几天，会发生啥？只是少赚点吗")
    assert not answer.items[0].text.startswith("运营商："), [i.text for i in answer.items]


def test_an_alert_s_first_paragraph_comes_with_the_paragraph_that_says_what_it_is_for(retriever):
    # the misnomer alert names the confusion; its second paragraph corrects it
    answer = compose(retriever, "有人说在defi里借贷LST也叫再质押，是真的吗")
    texts = [i.text for i in answer.items]
    at = next((k for k, t in enumerate(texts) if t.startswith("名称误区提示")), None)
    assert at is not None and at + 1 < len(texts) and texts[at + 1].startswith("两者都"), texts


def test_an_english_row_named_in_the_singular_is_that_row(retriever):
    # the English table's labels are plural ("Native restakers"); askers name one ("a native restaker")
    answer = compose(retriever, 'what does "native restaker" mean vs "liquid restaker"?')
    assert [i.text.split(":")[0] for i in answer.items[:2]] == ["Native restakers", "Liquid restakers"], [
        i.text for i in answer.items
    ]


def test_an_english_name_in_a_simplified_question_names_the_simplified_pages_row(retriever):
    # "operator" is 營運者 to the glossary and 运营商 on the Simplified page's table
    answer = compose(retriever, "operator是干嘛的？")
    assert answer.items[0].text.startswith("运营商："), [i.text for i in answer.items]


def test_a_quoted_part_of_a_title_points_at_its_section(retriever):
    # 「如何運作」 is part of one title only (「再質押如何運作？」): the data-model words around it
    # (資料, 表) would otherwise reach the reading list's dashboard
    quoted = retriever.search("做資料庫設計，頁面“如何運作”那張表一共有幾種實體？要建幾張資料表")
    assert quoted.hits[0].anchor == "how-does-restaking-work" and quoted.hits[0].scores.heading == 1.0
    # a quotation in several titles (「再質押」) points at none of them
    several = retriever.search("「再質押」這個詞在頁面上出現在哪")
    assert all(h.scores.heading < 1.0 for h in several.hits)


def test_a_request_to_list_a_kind_gets_its_instances(retriever):
    # 列举 (OpenCC writes 列舉 as 枚举, so the Simplified word needs its own pattern) asks for a
    # list; 「提及的再质押平台」 names the kind the page's platform cards are of
    answer = compose(retriever, "请列举该页面中提及的再质押平台名称。")
    assert answer.layout == "list", [i.text for i in answer.items]
    assert [i.text.split("（")[0] for i in answer.items] == ["EigenLayer", "Symbiotic"]
    risks = compose(retriever, "Please tell me all the risks of restaking, and which risk is the most high one?")
    assert risks.layout == "list" and len(risks.items) == 4, [i.text for i in risks.items]

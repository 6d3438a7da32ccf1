"""The chat page in a real browser: Debian's Chromium driven by playwright against the real
server (real model and index behind waitress on 127.0.0.1).

Screenshots of the phone and desktop layouts are written to ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from helpers import ROOT, LiveServer, axe_violations

pytestmark = pytest.mark.slow
browser_test = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
RISKS = "#what-are-the-risks-of-restaking"
# a Taiwanese reader's browser: the interface starts in the browser's language
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "reduced_motion": "reduce", "locale": "zh-TW"}
PHONE = {
    "locale": "zh-TW",
    "viewport": {"width": 375, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
    "reduced_motion": "reduce",
}


@contextmanager
def open_page(browser, **context_options):
    """A page in a fresh context (empty localStorage); fails the test on any uncaught script error."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def page(browser):
    with open_page(browser, **DESKTOP) as p:
        yield p


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def is_answer(response) -> bool:
    return response.url.endswith("/api/answer") and response.request.method == "POST"


def bots(page):
    return page.locator("#thread > li.msg.bot")


def send(page, question: str | None = None, *, via=None) -> tuple[dict, dict, object]:
    """Ask (Enter in the box, or ``via`` a click) and wait for the rendered reply; returns the
    request body, the API's answer and the reply's locator."""
    before = bots(page).count()
    if question is not None:
        page.fill("#question", question)
    with page.expect_response(is_answer) as info:
        if via is None:
            page.press("#question", "Enter")
        else:
            via.click()
    response = info.value
    reply = bots(page).nth(before)
    expect()(reply).not_to_have_class(re.compile(r"\bthinking\b"))
    return response.request.post_data_json, response.json(), reply


def screenshot(page, name: str) -> None:
    """The screen as it is (the latest answer), and scrolled to the top; full-page captures
    would draw the sticky composer in the middle of the page."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.evaluate("window.scrollTo({top: 0, behavior: 'instant'})")
    page.screenshot(path=str(ARTIFACTS / f"{name}-top.png"))


def test_glossary_gives_the_page_simplified_forms(live_server, tools):
    """Answers to Simplified questions come back Simplified; the page matches terms in them
    through each term's ``simplified`` forms."""
    import requests

    terms = requests.get(f"{live_server.url}/api/glossary", timeout=10).json()["terms"]
    for term in terms:
        assert term["simplified"] == list(
            dict.fromkeys(tools.to_simplified(f) for f in [term["term"], *term["aliases"]])
        )
    by_term = {t["term"]: t for t in terms}
    assert "原生再质押" in by_term["原生再質押者"]["simplified"]  # a form none of the aliases spell


def glossary_entry(page, live_server, shown: str) -> dict:
    terms = page.request.get(f"{live_server.url}/api/glossary").json()["terms"]
    return next(t for t in terms if shown in {t["term"], *t["aliases"], *t["simplified"]})


@browser_test
def test_question_gets_cited_answer_with_snippets_terms_and_copy(page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    response = page.goto(live_server.url)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect()(page.locator("html")).to_have_attribute("lang", "zh-Hant-TW")
    expect()(page.locator("#welcome")).to_contain_text("ethereum.org")
    assert 4 <= page.locator("#chips button").count() <= 6

    page.fill("#question", "再質押")  # Shift+Enter is a new line, not a send
    page.press("#question", "Shift+Enter")
    page.keyboard.type("有哪些風險？")
    assert page.input_value("#question") == "再質押\n有哪些風險？"
    assert page.locator("#thread > li").count() == 0

    request, body, reply = send(page, "再質押有哪些風險？")
    # (the interface language goes with it: a question alike in both scripts is answered in it)
    assert request == {"question": "再質押有哪些風險？", "history": [], "language": "zh-tw"}
    assert body["refused"] is False and page.input_value("#question") == ""
    expect()(page.locator("#thread .msg.user .bubble")).to_have_text(["再質押有哪些風險？"])

    # every citation of the API is a marker; the sources list links each section in a new tab
    assert reply.locator("button.cite").count() == sum(len(s["citations"]) for s in body["sentences"])
    links = reply.locator(".sources a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert any(h.endswith(RISKS) for h in hrefs), hrefs
    for i in range(links.count()):
        assert links.nth(i).get_attribute("target") == "_blank"
        assert "noopener" in links.nth(i).get_attribute("rel")

    cited = next(c for c in body["citations"] if c["url"].endswith(RISKS))
    popover = page.locator("#popover")
    reply.locator(f"button.cite[data-n='{cited['n']}']").click()
    expect()(popover).to_be_visible()
    expect()(popover).to_contain_text(cited["snippet"])
    expect()(popover).to_contain_text(cited["title"])
    assert popover.locator("a").get_attribute("href") == cited["url"]
    assert popover.locator("a").get_attribute("target") == "_blank"
    page.keyboard.press("Escape")
    expect()(popover).to_be_hidden()

    # keyboard: Enter on a focused marker opens it too
    reply.locator("button.cite").first.focus()
    page.keyboard.press("Enter")
    expect()(popover).to_contain_text(body["citations"][0]["snippet"])
    page.keyboard.press("Escape")
    expect()(popover).to_be_hidden()

    # a glossary term shows its English name and explanation on hover
    term = reply.locator("button.term").first
    entry = glossary_entry(page, live_server, term.inner_text())
    term.hover()
    expect()(popover).to_contain_text(entry["explanation"])
    expect()(popover).to_contain_text(entry["english"])
    screenshot(page, "chat-desktop")

    page.mouse.move(0, 0)
    reply.locator("button.copy").click()
    expect()(reply.locator("button.copy")).to_have_text("已複製")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(body["lead"]) and body["items"][0]["text"] in copied and cited["url"] in copied


@browser_test
def test_chip_follow_up_reload_and_clear(page, live_server):
    page.goto(live_server.url)
    chip = page.locator("#chips button", has_text="什麼是再質押？")
    request, first, _ = send(page, via=chip)
    assert request == {"question": "什麼是再質押？", "history": [], "language": "zh-tw"} and first["refused"] is False

    request, second, reply = send(page, "它有哪些風險？")
    assert request["history"] == [{"question": "什麼是再質押？", "answer": first["answer"]}]
    assert second["resolved_question"] and "再質押" in second["resolved_question"]
    expect()(reply.locator(".resolved")).to_contain_text(second["resolved_question"])

    page.reload()
    expect()(page.locator("#thread .msg.user .bubble")).to_have_text(["什麼是再質押？", "它有哪些風險？"])
    expect()(bots(page).nth(1).locator("button.cite")).to_have_count(
        sum(len(s["citations"]) for s in second["sentences"])
    )

    # the reloaded thread still carries the conversation into the next question
    request, _, _ = send(page, "那要等多久？")
    assert [t["question"] for t in request["history"]] == ["什麼是再質押？", "它有哪些風險？"]

    page.click("#clear")
    expect()(page.locator("#thread > li")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('restake-qa.thread')") is None
    page.reload()
    expect()(page.locator("#thread > li")).to_have_count(0)
    expect()(page.locator("#chips button").first).to_be_visible()


@browser_test
def test_html_in_a_question_is_shown_as_text(page, live_server):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live_server.url)
    question = "<img src=x onerror=alert(1)> 再質押是什麼？"
    send(page, question)
    for _ in range(2):  # as typed, then as restored from localStorage
        expect()(page.locator("#thread .msg.user .bubble")).to_have_text([question])
        assert page.locator("#thread img, #thread script, #thread [onerror]").count() == 0
        page.reload()
    page.wait_for_timeout(300)  # time for a broken image's onerror to fire, were there one
    assert dialogs == []


@browser_test
def test_errors_are_shown_in_the_thread_and_the_question_is_kept(page, real_engine, real_settings):
    from restake_qa import create_app

    # its own server: one question a minute (the glossary the page loads does not count), then stopped
    server = LiveServer(create_app(real_settings.replace(rate_limit_per_minute=1), engine=real_engine))
    server.start()
    try:
        with page.expect_response(lambda r: r.url.endswith("/api/glossary")):
            page.goto(server.url)
        alerts = page.locator("#thread [role=alert]")

        bad = "再質押\x01是什麼？"
        send(page, bad)
        expect()(alerts.nth(0)).to_contain_text("400")
        expect()(alerts.nth(0)).to_contain_text("`question` contains control characters")
        assert page.input_value("#question") == bad

        send(page, "再質押有哪些風險？")
        expect()(alerts.nth(1)).to_contain_text("too many requests")
        assert page.input_value("#question") == "再質押有哪些風險？"
    finally:
        server.stop()

    page.press("#question", "Enter")
    expect()(alerts).to_have_count(3)
    expect()(alerts.nth(2)).to_contain_text("無法連線到伺服器")
    assert page.input_value("#question") == "再質押有哪些風險？"
    expect()(page.locator("#send")).to_be_enabled()
    assert page.evaluate("localStorage.getItem('restake-qa.thread')") is None  # failures are not kept


@browser_test
def test_phone_layout_languages_and_simplified_terms(browser, live_server):
    with open_page(browser, **PHONE) as page:
        page.goto(live_server.url)
        page.select_option("#ui-language", "zh-cn")
        page.reload()  # the choice is remembered
        expect()(page.locator("html")).to_have_attribute("lang", "zh-Hans-CN")
        expect()(page.locator("h1")).to_have_text("再质押问答")

        # a question written alike in both scripts is answered in the interface's
        request, body, _ = send(page, "收益大概能有多少？")
        assert request["language"] == "zh-cn" and body["language"] == "zh-cn"
        chip = page.locator("#chips button", has_text="再质押有哪些风险？")
        _, body, reply = send(page, via=chip)
        assert body["language"] == "zh-cn"
        # answers to Simplified questions are Simplified; their terms are still explained
        shown = reply.locator("button.term").all_inner_texts()
        assert "再质押" in shown, shown
        entry = glossary_entry(page, live_server, "再质押")
        assert entry["term"] == "再質押"

        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width}px wide on a 375px phone"
        marker = reply.locator("button.cite").first
        marker.tap()
        popover = page.locator("#popover")
        expect()(popover).to_be_visible()
        box = popover.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
        screenshot(page, "chat-phone")

        page.select_option("#ui-language", "en")
        expect()(page.locator("html")).to_have_attribute("lang", "en")
        expect()(page.locator("#question")).to_have_attribute("placeholder", "Ask about restaking…")
        expect()(reply.locator(".sources h3")).to_have_text("Sources")
        screenshot(page, "chat-phone-en")


@browser_test
def test_the_interface_starts_in_the_browsers_language_until_one_is_chosen(browser, live_server):
    for locale, html_lang, title in (("en-US", "en", "Restaking Q&A"), ("zh-CN", "zh-Hans-CN", "再质押问答")):
        with open_page(browser, **{**DESKTOP, "locale": locale}) as page:
            page.goto(live_server.url)
            expect()(page.locator("html")).to_have_attribute("lang", html_lang)
            expect()(page.locator("h1")).to_have_text(title)
            expect()(page.locator("#ui-language")).to_have_value("en" if locale == "en-US" else "zh-cn")
            if locale == "en-US":  # a choice made once wins over the browser's language
                page.select_option("#ui-language", "zh-tw")
                page.reload()
                expect()(page.locator("html")).to_have_attribute("lang", "zh-Hant-TW")


@browser_test
def test_lists_tables_and_refusals_keep_their_shape(page, live_server):
    """A list question shows a list, a comparison a small table, each item with its own
    citation; a refusal says what the page does not cover and offers the nearest sections."""
    page.goto(live_server.url)

    _, body, reply = send(page, "再質押有哪些風險？")
    assert body["layout"] == "list" and len(body["items"]) >= 3
    expect()(reply.locator(".answer-lead")).to_have_text(body["lead"])
    items = reply.locator("ul.answer-list > li")
    expect()(items).to_have_count(len(body["items"]))
    for i, item in enumerate(body["items"]):
        expect()(items.nth(i).locator("button.cite")).to_have_count(len(item["citations"]))
        expect()(items.nth(i).locator("strong")).to_have_text(item["label"])

    _, body, reply = send(page, "質押和再質押差在哪？")
    assert body["layout"] == "table" and body["headers"]
    table = reply.locator("table.answer-table")
    expect()(table.locator("thead th")).to_have_count(len(body["headers"]) + 1)
    rows = table.locator("tbody tr")
    expect()(rows).to_have_count(len(body["items"]))
    for i, item in enumerate(body["items"]):
        expect()(rows.nth(i).locator("td")).to_have_count(len(body["headers"]) + 1)
        expect()(rows.nth(i).locator("td.cite-cell button.cite")).to_have_count(len(item["citations"]))
        expect()(rows.nth(i).locator("td").first).to_have_text(item["cells"][0])
    screenshot(page, "chat-list-and-table")

    _, body, reply = send(page, "EigenLayer 的空投什麼時候發？")
    assert body["refused"] and body["refusal"]["reason"] == "not_covered" and "空投" in body["refusal"]["uncovered"]
    expect()(reply.locator(".bubble.refused > p").first).to_contain_text("頁面沒有提到「空投」")
    links = reply.locator("ul.suggestions a")
    expect()(links).to_have_count(len(body["suggestions"]))
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [s["url"] for s in body["suggestions"]]
    assert reply.locator("button.cite").count() == 0


@browser_test
def test_an_english_asker_reads_the_english_page_cited_with_its_english_link(page, live_server):
    """In the English UI, an English question is answered with the English page's sentences
    and section titles, each source linking to the English section with the zh-TW one beside."""
    page.goto(live_server.url)
    chips = page.locator("#chips button").count()
    page.select_option("#ui-language", "zh-cn")  # the welcome links the page in the UI's language
    expect()(page.locator("#source-link")).to_have_attribute("href", "https://ethereum.org/zh/restaking/")
    page.select_option("#ui-language", "en")
    expect()(page.locator("#source-link")).to_have_attribute("href", "https://ethereum.org/en/restaking/")
    # every interface language offers the same example questions (English had four of six)
    expect()(page.locator("#chips button")).to_have_count(chips)
    expect()(page.locator("#chips button", has_text="What is slashing?")).to_be_visible()
    expect()(page.locator("#welcome")).to_contain_text("(in English, Traditional and Simplified Chinese)")
    _, body, reply = send(page, "What are the risks of restaking?")
    assert body["language"] == "en" and not body["refused"] and body["note"] is None
    expect()(reply.locator(".bubble")).to_have_attribute("lang", "en")
    text = reply.locator(".answer-text, .answer-list").first.inner_text()
    assert re.search(r"[A-Za-z]{4,}", text) and not re.search(r"[\u4e00-\u9fff]", text), text
    source = reply.locator(".sources li").first
    link = source.locator("a.source-link")
    expect()(link).to_have_attribute("href", f"https://ethereum.org/en/restaking/{RISKS}")
    expect()(link).to_contain_text("What are the risks of restaking?")
    expect()(source).to_have_attribute("lang", "en")
    original = source.locator("a.source-original")
    expect()(original).to_have_attribute("href", f"https://ethereum.org/zh-tw/restaking/{RISKS}")
    expect()(original).to_contain_text("Traditional-Chinese original")

    _, body, reply = send(page, "Is there a video explaining restaking?")
    video = reply.locator("a.item-link").first
    expect()(video).to_have_attribute("href", re.compile(r"^https://www\.youtube\.com/watch\?v="))


@browser_test
@pytest.mark.parametrize("options", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_chat_page_has_no_accessibility_violations(browser, live_server, options):
    """axe-core finds nothing on the chat page: empty, after a list answer, a comparison table,
    a refusal with its suggested sections and an open citation, and in English."""
    with open_page(browser, bypass_csp=True, **options) as page:
        page.goto(live_server.url)
        expect()(page.locator("#welcome")).to_be_visible()
        assert axe_violations(page) == []
        _, body, reply = send(page, "有哪些再質押平台可以選？")
        assert reply.locator("ul, ol").count() >= 1  # a list answer is a list
        _, body, reply = send(page, "原生再質押跟流動性再質押差在哪？")
        _, body, reply = send(page, "今天 ETH 價格多少？")
        assert body["refused"] and reply.locator("a").count() >= 1  # suggested sections
        bots(page).first.locator("button.cite").first.click()  # an open citation popover
        assert axe_violations(page) == []
        page.select_option("#ui-language", "en")
        _, body, reply = send(page, "What are the risks of restaking?")
        assert body["language"] == "en" and axe_violations(page) == []

"""The console (/admin) and the chat page's feedback buttons in a real browser: Debian's
Chromium driven by playwright against the real server (real model and index behind waitress
on 127.0.0.1), and axe-core's accessibility checks (``make browser`` installs it into
node_modules/). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from restake_qa import create_app
from restake_qa.build import build_index
from restake_qa.service import Engine

from helpers import CORPUS, ROOT, LiveServer, axe_violations, make_settings

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "console-token-42"
PAGE = "restaking.zh-tw.md"
QUESTION = "什麼是再質押？"
OLD_SENTENCE = "再質押是指質押者使用他們已經質押的 ETH 來保護其他去中心化服務。"
NEW_SENTENCE = "再質押是指質押者運用已經質押的 ETH，來保護更多其他的去中心化服務。"


@contextmanager
def open_page(browser, **options):
    """A page in a fresh context (a Taiwanese browser: the chat page starts in its language); fails
    the test on any uncaught script error."""
    options = {"locale": "zh-TW", **options}
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce", **options)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


class Site:
    """A copied corpus and data folder (a real build), the real app with an admin token."""

    def __init__(self, tmp: Path, real_settings, embedder, tools) -> None:
        self.corpus, self.data = tmp / "corpus", tmp / "data"
        shutil.copytree(CORPUS, self.corpus)
        (self.data / "cache").mkdir(parents=True)
        shutil.copy2(real_settings.data_path / "cache" / "embeddings.sqlite", self.data / "cache")
        settings = make_settings(
            tmp, corpus_dir=str(self.corpus), admin_token=TOKEN, rate_limit_per_minute=0, reload_interval=0.05
        )
        build_index(self.corpus, self.data, embedder, settings, tools=tools)
        self.engine = Engine(settings, embedder=embedder, tools=tools)
        self.server = LiveServer(create_app(settings, engine=self.engine))
        self.server.start()
        self.url = self.server.url

    def version(self) -> str:
        return requests.get(f"{self.url}/api/health", timeout=10).json()["index_version"]


@pytest.fixture(scope="module")
def site(tmp_path_factory, real_settings, real_engine, real_embedder, tools):
    s = Site(tmp_path_factory.mktemp("console"), real_settings, real_embedder, tools)
    yield s
    s.server.stop()


def sign_in(page, site, token: str = TOKEN) -> None:
    page.goto(f"{site.url}/admin")
    page.fill("#token", token)
    page.click("#sign-in-button")


def ask_in_chat(page, site, question: str) -> tuple[dict, object]:
    """Ask on the chat page; the API's answer and the rendered reply."""
    page.goto(site.url)
    page.evaluate("localStorage.clear()")
    page.reload()
    page.fill("#question", question)
    with page.expect_response(lambda r: r.url.endswith("/api/answer")) as info:
        page.press("#question", "Enter")
    reply = page.locator("#thread > li.msg.bot").last
    expect()(reply).not_to_have_class(re.compile(r"\bthinking\b"))
    return info.value.json(), reply


def snippets(body: dict) -> list[str]:
    return [c["snippet"] for c in body["citations"]]


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# ---------------------------------------------------------------------------------------------
def test_the_console_and_the_feedback_buttons_have_no_accessibility_violations(browser, site):
    with open_page(browser, bypass_csp=True) as page:
        page.goto(f"{site.url}/admin")
        assert axe_violations(page) == []
        sign_in(page, site)
        expect()(page.locator("#live-version")).to_have_text(site.version())
        expect()(page.locator("#page-sections details").first).to_be_visible()
        page.locator("#page-sections details").nth(1).locator("summary").click()
        page.set_input_files(
            "#page-file", files=[{"name": PAGE, "mimeType": "text/markdown", "buffer": changed_page().encode()}]
        )
        page.click("#preview-button")
        expect()(page.locator("#preview")).to_be_visible()
        screenshot(page, "console")
        assert axe_violations(page) == []
    with open_page(browser, bypass_csp=True) as page:
        _, reply = ask_in_chat(page, site, QUESTION)
        expect()(reply.locator("button.feedback")).to_have_count(2)
        assert axe_violations(page, "#thread > li.msg.bot:last-child .actions") == []


def changed_page() -> str:
    text = (CORPUS / PAGE).read_text("utf-8").replace(OLD_SENTENCE, NEW_SENTENCE)
    return text.replace(
        "## 質押與再質押 {#staking-vs-restaking}", "<StakingCalculator />\n\n## 質押與再質押 {#staking-vs-restaking}"
    )


def test_thumbs_down_in_the_chat_shows_in_the_console_and_its_export(browser, site, tmp_path):
    question = "再質押的營運者會不會偷走我的 ETH？"
    with open_page(browser) as chat:
        body, reply = ask_in_chat(chat, site, question)
        assert body["answer_id"]
        down = reply.locator("button.feedback.down")
        with chat.expect_response(lambda r: r.url.endswith("/api/feedback")) as info:
            down.click()
        assert info.value.status == 200
        assert info.value.request.post_data_json == {"answer_id": body["answer_id"], "vote": "down"}
        expect()(down).to_have_attribute("aria-pressed", "true")
        expect()(reply.locator(".feedback-status")).to_contain_text("謝謝")
        chat.reload()  # the vote is remembered with the thread
        expect()(chat.locator("#thread > li.msg.bot").last.locator("button.feedback.down")).to_have_attribute(
            "aria-pressed", "true"
        )

    with open_page(browser, accept_downloads=True) as page:
        sign_in(page, site)
        page.select_option("#question-kind", "thumbs_down")
        item = page.locator("#question-groups li.question", has_text=question)
        expect()(item).to_be_visible()
        expect()(item).to_contain_text("thumbs-down")
        group = page.locator("#question-groups section.group", has=page.locator("li.question", has_text=question))
        expect()(group.locator("h3")).to_contain_text(body["passages"][0]["title"])
        with page.expect_download() as download:
            page.click("#export")
        path = tmp_path / "export.jsonl"
        download.value.save_as(path)
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    (row,) = [r for r in rows if r["question"] == question]
    assert row["sections"] == [] and row["lang"] == "zh-tw"
    assert row["origin"]["reasons"] == ["thumbs_down"] and body["answer_id"] in row["origin"]["answer_ids"]


def test_sign_in_upload_preview_rebuild_and_rollback_are_cited_in_the_chat(browser, site):
    with open_page(browser) as chat:
        before, _ = ask_in_chat(chat, site, QUESTION)
    assert OLD_SENTENCE in snippets(before), snippets(before)
    v0 = site.version()

    with open_page(browser) as page:
        admin_requests: list = []
        page.on("request", lambda r: admin_requests.append(r) if "/api/admin/" in r.url else None)
        response = page.goto(f"{site.url}/admin")
        assert "script-src 'self'" in response.headers["content-security-policy"]

        # a wrong token is refused; the right one opens the console
        sign_in(page, site, "not-the-token")
        expect()(page.locator("#sign-in-error")).to_contain_text("Wrong token")
        expect()(page.locator("#console")).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('restake-qa.admin-token')") is None
        assert [r.all_headers().get("authorization") for r in admin_requests] == ["Bearer not-the-token"]
        admin_requests.clear()
        page.fill("#token", TOKEN)
        page.click("#sign-in-button")
        expect()(page.locator("#console")).to_be_visible()
        expect()(page.locator("#live-version")).to_have_text(v0)
        assert page.evaluate("sessionStorage.getItem('restake-qa.admin-token')") == TOKEN
        expect()(page.locator("#builds-table tbody tr")).to_have_count(1)

        # upload a changed page: the preview shows the changed section and the unknown component
        page.set_input_files(
            "#page-file", files=[{"name": PAGE, "mimeType": "text/markdown", "buffer": changed_page().encode()}]
        )
        page.click("#preview-button")
        expect()(page.locator("#preview")).to_be_visible()
        row = page.locator("#preview-sections tbody tr", has_text="#what-is-restaking")
        expect()(row.locator(".status")).to_have_text("changed")
        expect()(page.locator("#preview-sections tbody tr.status-changed")).to_have_count(1)
        expect()(page.locator("#preview-warnings li")).to_contain_text(["<StakingCalculator/>"])
        expect()(page.locator("#preview-changes .added")).to_have_text([NEW_SENTENCE])
        expect()(page.locator("#preview-changes .removed")).to_have_text([OLD_SENTENCE])
        assert site.version() == v0 and (site.corpus / PAGE).read_text("utf-8") != changed_page()  # nothing saved

        # save and rebuild: the progress shows as it runs, then the new build is live
        page.click("#save")
        expect()(page.locator("#job")).to_be_visible()
        expect()(page.locator("#job-progress li").first).to_be_visible()
        expect()(page.locator("#job-status")).to_contain_text("Done: published", timeout=120_000)
        expect()(page.locator("#job-progress")).to_contain_text("published")
        expect()(page.locator("#live-version")).not_to_have_text(v0)
        v1 = page.locator("#live-version").inner_text()
        expect()(page.locator("#live-message")).to_contain_text("previous file is kept")
        expect()(page.locator("#builds-table tbody tr")).to_have_count(2)
        expect()(page.locator("#builds-table tbody tr.live")).to_contain_text("+0 ~1 −0")
        screenshot(page, "console-rebuilt")

        with open_page(browser) as chat:
            after, reply = ask_in_chat(chat, site, QUESTION)
            assert after["index_version"] == v1
            assert NEW_SENTENCE in snippets(after) and OLD_SENTENCE not in snippets(after)
            expect()(reply).to_contain_text(NEW_SENTENCE[:12])

        # roll back: the old build and the old wording, in the chat too
        page.click("#rollback")
        expect()(page.locator("#rollback-question")).to_contain_text(v0)
        page.click("#rollback-yes")
        expect()(page.locator("#live-message")).to_contain_text(f"Rolled back: {v0} is live again")
        expect()(page.locator("#live-message")).to_contain_text(PAGE)
        expect()(page.locator("#live-version")).to_have_text(v0)
        assert (site.corpus / PAGE).read_text("utf-8") == (CORPUS / PAGE).read_text("utf-8")

        # the token went in a header, never in a URL
        assert len(admin_requests) > 10
        assert all(r.all_headers().get("authorization") == f"Bearer {TOKEN}" for r in admin_requests)
        assert all(TOKEN not in r.url for r in admin_requests)

    with open_page(browser) as chat:
        again, _ = ask_in_chat(chat, site, QUESTION)
    assert again["index_version"] == v0
    assert OLD_SENTENCE in snippets(again) and NEW_SENTENCE not in snippets(again)

"""The chat page in a real browser: Playwright for Python driving Debian's Chromium.

Skipped (with the reason) when playwright or /usr/bin/chromium is missing, except on CI
(``CI=true``), where that is a failure. ``SCHOLAR_CHAT_SCREENSHOT=docs/chat-page.png``
saves the page as the README shows it; otherwise the screenshot goes to a temp dir.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from assistant import ui
from assistant.store import PaperStore
from tests.conftest import FEDERATED_TITLES, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


if (reason := _missing()) is not None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser test cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Locator, Page, Route, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def url(default_store: PaperStore) -> Iterator[str]:
    settings = default_store.settings
    demo = ui.serve(settings, "127.0.0.1", free_port(), block=False, store=default_store)
    try:
        yield str(demo.local_url)
    finally:
        demo.close()


@pytest.fixture
def page(url: str) -> Iterator[tuple[Page, list[str]]]:
    """A fresh browser page; requests that would leave this machine are recorded and refused."""
    outside: list[str] = []

    def local_only(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1400, "height": 1000}, accept_downloads=True
            )
            context.route("**/*", local_only)
            tab = context.new_page()
            tab.set_default_timeout(30_000)
            tab.goto(url)
            yield tab, outside
        finally:
            browser.close()


def ask(page: Page, question: str) -> Locator:
    """Ask, wait until the answer (or an error) is complete, and return that message."""
    done = page.locator("#chat [data-testid='bot']").filter(
        has_text=re.compile("Answered by|Error:")
    )
    before = done.count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    expect(done).to_have_count(before + 1)
    return page.locator("#chat [data-testid='bot']").last


def choose(page: Page, field: str, option: str) -> None:
    page.locator(f"#{field} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_chat_page_end_to_end(page: tuple[Page, list[str]], tmp_path: Path) -> None:
    tab, outside = page
    expect(tab.locator("#collection-status")).to_contain_text("24 papers by YuhaoZhou")

    # The federated-learning question: five papers, each linked to its own page.
    answer = ask(tab, "Which papers address federated learning?")
    expect(answer).to_contain_text("5 papers in the collection address federated learning")
    expect(answer).to_contain_text("Answered by offline")
    for title in FEDERATED_TITLES:
        link = answer.get_by_role("link", name=re.compile("^" + re.escape(title) + r" \(\d{4}\)$"))
        expect(link).to_have_attribute("href", re.compile(r"^https?://"))
    expect(answer.locator("a")).to_have_count(5)

    # The sources panel: the five abstracts, the supporting sentences marked.
    tab.get_by_text("Sources of the latest answer").click()
    sources = tab.locator("#sources-html")
    expect(sources.locator("section")).to_have_count(5)
    expect(sources.locator("mark").first).to_be_visible()
    assert sources.locator("mark").count() >= 5
    expect(sources).to_contain_text("abstract cut short in the collection")  # DeFTA's is
    screenshot = os.environ.get("SCHOLAR_CHAT_SCREENSHOT") or str(tmp_path / "chat-page.png")
    Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=screenshot, full_page=True)

    # A follow-up narrows the previous answer's papers.
    follow_up = ask(tab, "Which of those were published in 2024?")
    expect(follow_up).to_contain_text("among the papers of the previous answer")
    expect(follow_up.locator("a")).to_have_count(3)
    for text in follow_up.locator("a").all_inner_texts():
        assert text.endswith("(2024)") and text.removesuffix(" (2024)") in FEDERATED_TITLES
    expect(sources.locator("section")).to_have_count(3)

    # Switch to a backend that cannot be reached: one clear line, no traceback, no switch.
    closed = free_port()
    choose(tab, "backend", "OpenAI-compatible server")
    base_url = tab.locator("#base-url").get_by_role("textbox")
    expect(base_url).to_be_visible()
    base_url.fill(f"http://127.0.0.1:{closed}/v1")
    failed = ask(tab, "Which papers address federated learning?")
    expect(failed).to_contain_text(
        f"Error: openai-compatible (http://127.0.0.1:{closed}/v1, default model) failed:"
    )
    expect(failed).to_contain_text("Nothing was answered and no other backend was tried")
    assert "Traceback" not in tab.content()

    # Back to offline: it answers again, and says so.
    choose(tab, "backend", "Offline (no model)")
    expect(base_url).to_be_hidden()
    again = ask(tab, "Which papers address federated learning?")
    expect(again).to_contain_text("Answered by offline")
    expect(again.locator("a")).to_have_count(5)

    # Export the conversation's citations as BibTeX.
    export = tab.locator("#export")
    expect(export).to_be_enabled()
    with tab.expect_download() as download:
        export.click()
    assert download.value.suggested_filename == "scholar-chat-citations.bib"
    bib = Path(download.value.path()).read_text(encoding="utf-8")
    assert bib.count("@misc{") == 5
    for title in FEDERATED_TITLES:
        assert f"  title = {{{title}}}," in bib
    assert bib.count("  author = {YuhaoZhou},") == 5

    # Another tab is another conversation.
    other = tab.context.new_page()
    other.goto(tab.url)
    expect(other.locator("#collection-status")).to_contain_text("24 papers")
    expect(other.locator("#chat [data-testid='user']")).to_have_count(0)
    expect(other.locator("#export")).to_be_disabled()
    expect(tab.locator("#chat [data-testid='user']")).to_have_count(4)

    assert outside == []  # the page loaded nothing from outside this machine

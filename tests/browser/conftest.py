"""Browser harness: Playwright (sync API) driving Debian's chromium against live_server.

Never downloads a browser: it launches the system chromium through `executable_path`.
Tests using these fixtures need the live server's transactional database on both
aliases: `@pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])`.
A failing test leaves a full-page screenshot under `test-artifacts/`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, chromium_path, skip_or_fail

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # Remember each phase's outcome on the item, so the page fixture can screenshot on failure.
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def _playwright_browser(monkeypatch):
    """One chromium per test: Playwright's event loop and the env switch below live
    exactly as long as the test, so no later (non-browser) test runs with either."""
    executable = chromium_path()
    if not executable or not os.path.exists(executable):
        skip_or_fail("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install playwright)")
    # Playwright's sync API runs an event loop in this thread; Django then refuses ORM
    # calls (live_server setup, test assertions) from "async" context unless told it is safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(request, _playwright_browser, live_server):
    """A fresh browser context and page whose relative URLs go to `live_server`."""
    context = _playwright_browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    failed = any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-150:]
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            (ARTIFACTS / f"{name}.html").write_text(page.content())
        except Exception as exc:  # the screenshot must never hide the real failure
            print(f"screenshot failed: {exc}")
    context.close()


@pytest.fixture
def browser_login():
    """Log in through the real login form: `browser_login(page, alice)`."""

    def login(page, user, password: str = PASSWORD):
        page.goto("/accounts/login/")
        page.fill("input[name=login]", user.email)
        page.fill("input[name=password]", password)
        page.click("form button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    return login

"""Real-browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Playwright's sync API keeps an event loop running in this thread, which makes Django refuse ORM
calls from the test body ("async context"); the tests only touch the database between browser
steps, never concurrently, so allowing it here is safe.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("RLCHF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


# Module scope, not session: while Playwright's sync API is open it holds an event loop in the
# main thread, and every later test that calls async_to_sync (Channels layers) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleErrors(list):
    """Console errors and uncaught exceptions of every page opened in a context."""

    def watch(self, page: object) -> None:
        page.on("console", lambda msg: msg.type == "error" and self.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc}"))


@pytest.fixture
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture
def new_page(browser, console_errors):
    """`new_page(width, height, **context_options)`: a page in a fresh context (own cookies and
    sessionStorage); its console errors are collected in `console_errors`."""
    contexts = []

    def make(width: int = 1100, height: int = 900, **options: object):
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        console_errors.watch(page)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def log_in(live_server):
    """`log_in(page, username, password)` through the real login form; lands on "My projects"."""

    def go(page: object, username: str, password: str) -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

    return go

"""Browser tests: a real Chromium, driven by Playwright, against pytest-django's live server.

Chromium is never downloaded: the suite uses the one installed on the machine (Debian's
``/usr/bin/chromium``, or the path in ``FLEX_CHROMIUM``). Without one the tests skip with
the reason, unless ``FLEX_REQUIRE_BROWSER=1`` (CI), which turns that into a failure.

Every test asks for ``live_server``, which makes its database transactional: the server
thread must see the rows the test writes, so they cannot sit in an open transaction.
Screenshots land in ``test-output/screenshots/`` at the repository root (git-ignored).

Every page runs under the site's Content-Security-Policy: the ``page`` fixture records the
browser's console, uncaught JavaScript errors and ``securitypolicyviolation`` events, and
a test whose pages broke the policy, or threw, fails at teardown (``BrowserLog``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, expect, sync_playwright

# Playwright's sync API keeps an event loop running in the test thread, and Django's ORM
# refuses to run in a thread with a running loop unless told this is on purpose.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

BROWSER_DIR = Path(__file__).resolve().parent
REPO_ROOT = BROWSER_DIR.parents[1]
SCREENSHOT_DIR = REPO_ROOT / "test-output" / "screenshots"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Pages of this app answer in milliseconds; a missing element should fail fast, not after 30 s.
TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``browser`` (so ``-m "not browser"`` leaves them out)."""
    for item in items:
        if BROWSER_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def find_chromium() -> str | None:
    candidates = [os.environ.get("FLEX_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        reason = (
            "No Chromium found (looked at $FLEX_CHROMIUM, /usr/bin/chromium and `chromium` on PATH); "
            "install Debian's chromium or point FLEX_CHROMIUM at a Chromium binary."
        )
        if os.environ.get("FLEX_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FLEX_REQUIRE_BROWSER=1: {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Runs in every document before its own scripts (Playwright's init scripts are not subject
# to the page's CSP): each violation the browser reports becomes a console error that the
# fixture below sees, even one Chromium would not log itself.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`);
});
"""
# How Chromium words a CSP violation in the console, and how the listener above does.
CSP_MARKERS = ("Content Security Policy", "Content-Security-Policy", "Refused to", "CSP violation")


@dataclass
class BrowserLog:
    """What the pages of one test said: console messages and uncaught errors."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        self.console.append(f"[{message.type}] {message.text} ({message.page.url if message.page else '?'})")

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"{error.name}: {error.message}")

    @property
    def csp_violations(self) -> list[str]:
        return [line for line in self.console if any(marker in line for marker in CSP_MARKERS)]

    def problems(self) -> list[str]:
        return self.csp_violations + [f"uncaught JavaScript error: {error}" for error in self.errors]


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture
def page(browser: Browser, live_server, browser_log: BrowserLog) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test, so each test signs in on its own.

    Fails the test at teardown if any page broke the Content-Security-Policy or threw."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    context.on("console", browser_log.on_console)
    context.on("weberror", lambda web_error: browser_log.on_page_error(web_error.error))
    page = context.new_page()
    yield page
    context.close()
    problems = browser_log.problems()
    if problems:
        pytest.fail(
            "The browser reported a Content-Security-Policy violation or a JavaScript error:\n  "
            + "\n  ".join(problems),
            pytrace=False,
        )


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def login(page: Page, live_server, email: str, password: str) -> None:
    """Sign in through the real form and wait until the app has taken us somewhere else."""
    page.goto(f"{live_server.url}/auth/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login/" not in url)
    page.wait_for_load_state("domcontentloaded")


def nav_labels(page: Page) -> list[str]:
    """The link texts of the left navigation, in order."""
    links = page.locator('nav#sidenav[aria-label="Main"] a')
    return [re.sub(r"\s+", " ", text).strip() for text in links.all_inner_texts()]

"""Browser fixtures: one headless Debian Chromium per session, a fresh context per test, axe-core checks at
desktop and phone widths, and screenshots of both when SCREENSHOTS=1 (the gallery's source; a full-page capture
costs a few hundred milliseconds, twice per audited page, which a test run has no use for).

Chromium comes from Debian (apt-get install -y chromium), never from `playwright install`. Outside CI a missing
Chromium or axe-core skips these tests; under CI=true it fails them, because the test command installs both.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import create_app
from app.extensions import db
from app.services.operations.live import stop_live_feed
from tests.conftest import clean_database

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
TAKE_SCREENSHOTS = os.environ.get("SCREENSHOTS", "") == "1"
IN_CI = os.environ.get("CI", "").lower() == "true"
WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 360, "height": 740}}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# Short, so the self-refreshing tracking page can be watched without waiting 30 s.
REFRESH_SECONDS = 1


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        _missing("Chromium not found: apt-get install -y chromium")
    if not AXE_JS.exists():
        _missing("axe-core not found (node_modules/axe-core/axe.min.js): run npm ci")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def app(make_config):
    """The test app, with the tracking page refreshing every second."""
    application = create_app(make_config(TRACK_REFRESH_SECONDS=REFRESH_SECONDS))
    yield application
    stop_live_feed(application)  # the tracking page's stream started its poll
    clean_database(application)
    with application.app_context():
        db.engine.dispose()


def page_overflow(page) -> dict | None:
    """None if the page fits its viewport's width; else how wide it is and the elements sticking out."""
    return page.evaluate("""() => {
        const root = document.documentElement;
        if (root.scrollWidth <= window.innerWidth) return null;
        const wide = [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5)
            .map(el => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).replace(/ /g, '.') : ''));
        return {url: location.pathname, scrollWidth: root.scrollWidth, innerWidth: window.innerWidth, wide};
    }""")


def assert_fits_both_widths(page) -> None:
    """No page may scroll sideways, at desktop or at phone width."""
    original = page.viewport_size
    try:
        for label, size in WIDTHS.items():
            page.set_viewport_size(size)
            overflow = page_overflow(page)
            assert overflow is None, f"page wider than the {label} viewport: {overflow}"
    finally:
        page.set_viewport_size(original)


class Tab:
    """A browser context on the live server that records anything the app should never do, and checks every
    page it loads for sideways scrolling at both widths."""

    def __init__(self, browser, base_url: str, javascript: bool = True) -> None:
        self.base_url = base_url
        self.context = browser.new_context(base_url=base_url, viewport=WIDTHS["desktop"],
                                           java_script_enabled=javascript)
        if javascript:
            self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
        self.context.set_default_timeout(10_000)
        self.foreign_requests: list[str] = []
        self.script_errors: list[str] = []
        self.policy_violations: list[str] = []
        self.context.on("request", self._check_request)
        self.context.on("console", self._check_console)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.script_errors.append(str(error)))
        self.too_wide: list[str] = []
        self.pages_checked = 0
        self.page.on("load", self._check_width)

    def _check_width(self, page) -> None:
        try:
            assert_fits_both_widths(page)
            self.pages_checked += 1
        except AssertionError as error:
            self.too_wide.append(str(error))
        except Exception:  # noqa: BLE001, S110 - the page navigated on while being measured; the next is checked
            pass

    def _check_request(self, request) -> None:
        url = request.url
        # chrome:// and chrome-extension:// are the browser's own pages (its PDF viewer), never the network.
        if not (url.startswith(self.base_url + "/")
                or url.startswith(("data:", "blob:", "about:", "chrome://", "chrome-extension://"))):
            self.foreign_requests.append(url)

    def _check_console(self, message) -> None:
        # Chromium reports every blocked script, style, font, frame or connection as a console error.
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.policy_violations.append(f"{message.location.get('url', '')}: {message.text}")

    def close(self) -> None:
        self.context.close()
        assert not self.foreign_requests, f"the app made external requests: {self.foreign_requests}"
        assert not self.script_errors, f"JavaScript errors: {self.script_errors}"
        assert not self.policy_violations, f"Content-Security-Policy violations: {self.policy_violations}"
        assert not self.too_wide, f"pages that scroll sideways: {self.too_wide}"


@pytest.fixture
def open_tab(browser, live_server) -> Iterator[Callable[..., Tab]]:
    tabs: list[Tab] = []

    def open_(javascript: bool = True) -> Tab:
        tab = Tab(browser, live_server.url, javascript)
        tabs.append(tab)
        return tab

    yield open_
    for tab in tabs:
        tab.close()


@pytest.fixture
def page(open_tab):
    return open_tab().page


def axe_violations(page) -> list[dict]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the page's CSP does not govern: a <script> tag added
        # by the test would be an inline script, refused (and reported) like any other.
        page.evaluate(f"{AXE_JS.read_text()}\n;undefined")
    return page.evaluate("async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations")


def format_violations(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {json.dumps(node['target'])}: {node.get('failureSummary', '').splitlines()[-1:]}")
    return "\n".join(lines)


def audit(page, name: str) -> None:
    """At desktop and phone widths: the page fits the viewport's width, axe-core finds no violation, and (with
    SCREENSHOTS=1) a full-page screenshot of each is saved."""
    if TAKE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    try:
        for label, size in WIDTHS.items():
            page.set_viewport_size(size)
            overflow = page_overflow(page)
            assert overflow is None, f"{name} is wider than the {label} viewport: {overflow}"
            violations = axe_violations(page)
            assert not violations, f"axe-core on {name} ({label}):\n{format_violations(violations)}"
            if TAKE_SCREENSHOTS:
                page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True,
                                animations="disabled")
    finally:
        page.set_viewport_size(original)

"""Shared setup for the browser tests: Debian's Chromium driven by Playwright (never a
downloaded browser build); screenshots go to test-artifacts/ for people to look at."""

from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

# The password ``accounts.tests.factories.UserFactory`` gives every test user.
PASSWORD = "correct-horse-battery"

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

# Reports each violation to the console too, where the listener below collects it; Playwright
# injects it outside the page, so the policy does not block it.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`Content Security Policy violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || document.location.href}:${event.lineNumber}`);
});
"""


class PolicyCheckedBrowser:
    """A Playwright browser whose pages collect every Content-Security-Policy violation.

    Chromium reports a refused script, style or resource in the console ("... violates the
    following Content Security Policy directive ..."); ``violations`` lists them for the test's
    teardown to fail on. Everything else is the Playwright browser's own API.
    """

    def __init__(self, browser):
        self._browser = browser
        self.violations: list[str] = []

    def __getattr__(self, name):
        return getattr(self._browser, name)

    def _watch_page(self, page) -> None:
        def collect(message) -> None:
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
                self.violations.append(f"{page.url}: {message.text}")

        page.on("console", collect)

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        context.add_init_script(_REPORT_VIOLATIONS)
        context.on("page", self._watch_page)
        return context

    def new_page(self, **kwargs):
        # As Browser.new_page: a page in a context of its own (closed with the browser).
        return self.new_context(**kwargs).new_page()


def log_in(page, base: str, username: str, next_path: str = "/", *, password: str = PASSWORD) -> None:
    """Sign ``username`` in through the log-in form and wait until it has sent them on to ``next_path``.

    The one log-in of every browser test; logging in switches the site to the person's own language.
    """
    page.goto(f"{base}/accounts/login/?next={quote(next_path, safe='/')}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")


def admin_log_in(page, base: str, username: str, *, password: str = PASSWORD) -> None:
    """Sign staff member ``username`` in through the admin's log-in form and wait for the admin's index."""
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

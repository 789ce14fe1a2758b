"""In headless Chromium: the API docs page (Swagger UI, served by the site) works under the site's
Content-Security-Policy; the browser fixture fails the test on any violation."""

import pytest

from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS

pytestmark = BROWSER_MARKS


@pytest.mark.django_db(transaction=True)
def test_api_docs_render_their_operations_under_the_policy(live_server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/api/docs/")

    page.wait_for_selector("text=/api/v1/auth/token/", timeout=15_000)
    page.click("text=/api/v1/auth/token/")  # opens the operation: Swagger UI's own scripts at work
    page.wait_for_selector("text=invalid_credentials", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)

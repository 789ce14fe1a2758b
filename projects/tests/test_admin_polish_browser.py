"""The admin at 1280 px in headless Chromium: the review queue shows its risk columns without
scrolling, the decision buttons look like the admin's own, and the ledger verification page has
one heading. Screenshots in test-artifacts/."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import StaffFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, admin_log_in
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory
from risk.services import risk_assess_campaign

pytestmark = [*BROWSER_MARKS, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_review_queue_and_verification_page_at_1280px(live_server, browser):
    call_command("setup_staff_groups", verbosity=0)
    staff = StaffFactory(username="ada")
    for n in range(3):
        campaign = CampaignFactory(
            title=f"A rather long campaign title number {n} that goes on and on about dice",
            status=CampaignStatus.IN_REVIEW,
            submitted_at=timezone.now(),
        )
        risk_assess_campaign(campaign=campaign)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    admin_log_in(page, live_server.url, staff.username)
    page.goto(f"{live_server.url}/admin/projects/campaignreviewqueue/")
    page.screenshot(path=str(ARTIFACTS / "admin-review-queue-1280.png"), full_page=True)
    # Every column, the risk ones last, fits: the table's scrolling box has nothing to scroll.
    results = page.locator("#changelist .results")
    assert results.evaluate("r => r.scrollWidth <= r.clientWidth"), results.evaluate(
        "r => [r.scrollWidth, r.clientWidth]"
    )
    box = page.locator("#result_list th.column-risk_reasons_display").bounding_box()
    assert box["x"] + box["width"] <= results.bounding_box()["x"] + results.bounding_box()["width"] + 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    page.locator("#result_list th.field-title a").first.click()
    approve = page.locator("#review-decision button[value=approve]")
    approve.wait_for()
    # Styled by the admin's stylesheet (its button colour), not left as the browser's grey default.
    background = approve.evaluate("b => getComputedStyle(b).backgroundColor")
    assert background not in ("rgb(239, 239, 239)", "rgb(240, 240, 240)", "rgba(0, 0, 0, 0)")
    page.screenshot(path=str(ARTIFACTS / "admin-review-decision.png"), full_page=True)

    page.goto(live_server.url + reverse("admin:settlement_ledger_verify"))
    assert page.locator("h1").count() == 1
    assert page.locator("h1").inner_text() == "Ledger verification"

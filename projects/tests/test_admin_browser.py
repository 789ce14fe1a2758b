"""In headless Chromium: a reviewer logs into the admin, opens the review queue, approves a
campaign, and the campaign goes live on the public site."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from accounts.tests.factories import ReviewerFactory
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CampaignFactory

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture
def chromium_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls this test makes
    # between browser steps are ordinary blocking calls, which Django must be told are fine.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()


@pytest.mark.django_db(transaction=True)
def test_reviewer_approves_a_campaign_in_admin_and_it_goes_live(live_server, chromium_page):
    # An earlier transactional test may have flushed the groups the migrations created.
    call_command("setup_staff_groups", verbosity=0)
    reviewer = ReviewerFactory(username="rita")
    campaign = CampaignFactory(
        title="Tiny Dungeon",
        status=CampaignStatus.IN_REVIEW,
        launch_on_approval=True,
        description="A pocket roguelike board game.",
    )
    campaign.submitted_at = campaign.created_at
    campaign.save()
    page = chromium_page

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", reviewer.username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")
    page.click("text=Review queue")
    page.click("text=Tiny Dungeon")
    page.wait_for_selector("text=A pocket roguelike board game.")
    page.screenshot(path=str(ARTIFACTS / "admin-review-page.png"), full_page=True)
    page.click("button[value=approve]")
    page.wait_for_selector("text=Approved: Tiny Dungeon")
    page.screenshot(path=str(ARTIFACTS / "admin-approved.png"), full_page=True)

    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.LIVE
    page.goto(live_server.url + "/")
    page.wait_for_selector("text=Tiny Dungeon")
    page.screenshot(path=str(ARTIFACTS / "home-after-approval.png"), full_page=True)
    assert os.path.getsize(ARTIFACTS / "home-after-approval.png") > 0

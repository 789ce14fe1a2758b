"""In headless Chromium: a reviewer logs into the admin, opens the review queue, approves a
campaign, and the campaign goes live on the public site."""

import os

import pytest
from django.core.management import call_command

from accounts.tests.factories import ReviewerFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, admin_log_in
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CampaignFactory

pytestmark = BROWSER_MARKS


@pytest.fixture
def chromium_page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    page.close()


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

    admin_log_in(page, live_server.url, reviewer.username)
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

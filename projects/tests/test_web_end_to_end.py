"""End to end in headless Chromium: an initiator signs up and creates a campaign with two
rewards, a reviewer approves it in the admin, one backer pledges with a working card and
another with a declined one, the deadline passes and the page shows success. Screenshots of
each step go to test-artifacts/."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import ReviewerFactory, UserFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, admin_log_in, log_in
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CategoryFactory
from projects.tests.pictures import picture_bytes

pytestmark = BROWSER_MARKS


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"e2e-{name}.png"), full_page=True)


def pledge(page, amount: str, card: str) -> None:
    page.click("text=Back this project")
    page.wait_for_selector("text=Choose a reward")
    page.fill("#id_amount", amount)
    page.fill("#id_card_number", card)
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("button:has-text('Pledge')")


@pytest.mark.django_db(transaction=True)
def test_initiator_creates_reviewer_approves_backers_pledge_campaign_succeeds(live_server, browser, settings, tmp_path):
    base = live_server.url
    # As in production: logged-out visitors are served copies of pages rendered moments earlier.
    settings.PAGE_CACHE_SECONDS = 10
    settings.SERVE_MEDIA = True
    # An earlier transactional test may have flushed the groups the migrations created.
    call_command("setup_staff_groups", verbosity=0)
    CategoryFactory(name="Games", slug="games")
    reviewer = ReviewerFactory(username="rita")
    UserFactory(username="bea", display_name="Bea")
    UserFactory(username="dan", display_name="Dan")
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    # The initiator signs up and creates the campaign, step by step.
    page.goto(base + "/accounts/signup/")
    page.fill("#id_username", "ivy")
    page.fill("#id_email", "ivy@example.com")
    page.fill("#id_display_name", "Ivy Makes Games")
    page.fill("#id_password1", "analytical-engine-1843")
    page.fill("#id_password2", "analytical-engine-1843")
    page.click("main button[type=submit]")
    page.click("header >> text=Start a campaign")
    page.fill("#id_title", "Tiny Dungeon")
    page.fill("#id_summary", "A pocket roguelike board game for two players.")
    page.select_option("#id_category", label="Games")
    page.fill("#id_goal", "100.00")
    shot(page, "01-basics")
    page.click("text=Save draft and continue")
    page.fill("#id_description", "Twelve tiles, two heroes, one dungeon.\n\nPrinted and packed in Lisbon.")
    page.fill("#id_risks", "The printer could be late; a second one is ready.")
    page.click("text=Save and continue")
    cover = tmp_path / "cover.jpg"
    cover.write_bytes(picture_bytes(1600, 900))
    page.set_input_files("#id_cover-image", str(cover))
    page.fill("#id_cover-alt", "The tin and its twelve tiles")
    page.click("text=Upload the cover")
    page.wait_for_selector("text=Cover saved.")
    page.click("text=Continue to funding")
    page.check("input[name=funding_model][value=all_or_nothing]")
    page.fill("#id_duration_days", "30")
    page.check("#id_launch_on_approval")
    shot(page, "02-funding")
    page.click("text=Save and continue")
    page.fill("#id_title", "Print and play")
    page.fill("#id_minimum_amount", "10")
    page.click("text=Add reward")
    page.fill("#id_title", "Boxed game")
    page.fill("#id_minimum_amount", "45")
    page.fill("#id_quantity_limit", "50")
    page.fill("#id_estimated_delivery", "2027-03-01")
    page.click("text=Add reward")
    page.wait_for_selector("text=Reward “Boxed game” added.")
    shot(page, "03-rewards")
    page.click("text=Continue to preview and submit")
    page.click("button:has-text('Submit for review')")
    page.wait_for_selector("text=is submitted")
    shot(page, "04-submitted")
    campaign = Campaign.objects.get(title="Tiny Dungeon")
    assert campaign.status == CampaignStatus.IN_REVIEW
    assert campaign.rewards.count() == 2

    # A reviewer approves it in the admin; it goes live at once.
    admin = browser.new_page(viewport={"width": 1280, "height": 900})
    admin_log_in(admin, base, reviewer.username)
    admin.click("text=Review queue")
    admin.click("text=Tiny Dungeon")
    admin.click("button[value=approve]")
    admin.wait_for_selector("text=Approved: Tiny Dungeon")
    shot(admin, "05-admin-approved")
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.LIVE

    # One backer pledges with a working card.
    backer = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(backer, base, "bea", campaign.get_absolute_url())
    backer.wait_for_selector("text=Back this project")
    shot(backer, "06-campaign-live")
    pledge(backer, "120", "4242 4242 4242 4242")
    backer.wait_for_selector("text=Thank you for backing")
    shot(backer, "07-pledged")

    # Another uses a declined card and is told why.
    declined = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(declined, base, "dan", campaign.get_absolute_url())
    pledge(declined, "30", "4000 0000 0000 0002")
    declined.wait_for_selector("text=Your card was declined")
    shot(declined, "08-declined")
    statuses = dict(Pledge.objects.values_list("backer__username", "status"))
    assert statuses == {"bea": PledgeStatus.HELD, "dan": PledgeStatus.FAILED}

    # A visitor who is not logged in looks at the live campaign (and so it is cached for visitors).
    visitor = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    visitor.goto(base + campaign.get_absolute_url())
    visitor.wait_for_selector("text=Back this project")

    # The deadline passes; the close command settles the campaign.
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    call_command("close_due_campaigns")
    backer.goto(base + campaign.get_absolute_url())
    backer.wait_for_selector("text=Funded!")
    shot(backer, "09-succeeded")
    # The visitor sees the outcome at once too, not the copy of the live page.
    visitor.goto(base + campaign.get_absolute_url())
    visitor.wait_for_selector("text=Funded!")
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SUCCEEDED

"""In headless Chromium: discover a campaign, sign up, pledge with a working card and with a
declined one, cancel, and see the campaign succeed after its deadline. Screenshots of every
step go to test-artifacts/."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, log_in
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CategoryFactory, LiveCampaignFactory, RewardTierFactory

pytestmark = BROWSER_MARKS


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def fill_card(page, number: str) -> None:
    page.fill("#id_card_number", number)
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")


@pytest.mark.django_db(transaction=True)
def test_backers_discover_pledge_and_see_the_campaign_succeed(live_server, browser):
    games = CategoryFactory(name="Games", slug="games")
    now = timezone.now()
    campaign = LiveCampaignFactory(
        title="Tiny Dungeon",
        summary="A pocket roguelike board game for two.",
        description="Twelve tiles, two heroes, one dungeon that fits in your pocket.\n\nPrinted locally.",
        category=games,
        goal=5_000,
        launched_at=now - timedelta(days=2),
        deadline=now + timedelta(days=2, hours=3),
        initiator=UserFactory(display_name="Ivy Initiator"),
    )
    RewardTierFactory(campaign=campaign, title="Print and play", minimum_amount=1_000, description="PDF files.")
    RewardTierFactory(
        campaign=campaign,
        title="Boxed game",
        minimum_amount=4_500,
        quantity_limit=20,
        estimated_delivery=(now + timedelta(days=120)).date(),
        description="The full game in a tin.",
    )
    for n in range(4):
        LiveCampaignFactory(title=f"Other project {n}", launched_at=now - timedelta(days=n * 5))
    declined_backer = UserFactory(username="dan")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    page.wait_for_selector("text=Tiny Dungeon")
    shot(page, "01-discover")
    page.fill("#id_q", "roguelike")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("text=1 campaign matching")
    shot(page, "02-search")
    page.click("text=Tiny Dungeon")
    page.wait_for_selector("text=Back this project")
    shot(page, "03-campaign")

    # Logged out, the form shows the rewards; the choice goes through sign-up and comes back.
    page.click("text=Back this project")
    page.wait_for_selector("text=Choose a reward")
    page.check(f"input[name=reward][value='{campaign.rewards.get(title='Boxed game').pk}']")
    page.fill("#id_amount", "50")
    assert page.locator("#id_card_number").count() == 0
    page.click("button:has-text('Log in to pledge')")
    page.click("text=Create an account")
    page.fill("#id_username", "bea")
    page.fill("#id_email", "bea@example.com")
    page.fill("#id_display_name", "Bea Backer")
    page.fill("#id_password1", "analytical-engine-1843")
    page.fill("#id_password2", "analytical-engine-1843")
    shot(page, "04-signup")
    page.click("button:has-text('Sign up')")
    page.wait_for_selector("text=Choose a reward")
    assert page.is_checked(f"input[name=reward][value='{campaign.rewards.get(title='Boxed game').pk}']")
    assert page.input_value("#id_amount") == "50"
    fill_card(page, "4242424242424242")
    shot(page, "05-pledge-form")
    page.click("button:has-text('Pledge')")
    page.wait_for_selector("text=Thank you for backing")
    shot(page, "06-confirmation")
    assert Pledge.objects.get(backer__username="bea").status == PledgeStatus.HELD

    other = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    log_in(other, live_server.url, declined_backer.username, f"/pledges/new/{campaign.slug}/")
    other.wait_for_selector("text=Choose a reward")
    other.fill("#id_amount", "80")
    fill_card(other, "4000 0000 0000 0002")
    other.click("button:has-text('Pledge')")
    other.wait_for_selector("text=Your card was declined")
    shot(other, "07-declined-phone")
    assert Pledge.objects.get(backer=declined_backer).status == PledgeStatus.FAILED

    page.goto(live_server.url + "/pledges/")
    page.wait_for_selector("text=Held in escrow")
    shot(page, "08-my-pledges")

    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    call_command("close_due_campaigns")
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SUCCEEDED
    page.goto(live_server.url + campaign.get_absolute_url())
    page.wait_for_selector("text=Funded!")
    shot(page, "09-succeeded")
    page.goto(live_server.url + "/pledges/")
    page.wait_for_selector("text=Released to the initiator")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/")
    page.wait_for_selector("text=Live campaigns")
    shot(page, "10-discover-phone")

"""In headless Chromium: a backer manages their pledge, raising it for a bigger reward and lowering
it again, on the same pledge. Screenshots go to test-artifacts/."""

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, log_in
from pledges.models import Pledge
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.tests.checks import invariant_problems, net_charged

pytestmark = [*BROWSER_MARKS, pytest.mark.slow]


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"web-manage-{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_a_backer_manages_their_pledge(live_server, browser):
    campaign = LiveCampaignFactory(title="Tiny Dungeon", goal=50_000)
    RewardTierFactory(campaign=campaign, title="Print and play", minimum_amount=1_000)
    boxed = RewardTierFactory(campaign=campaign, title="Boxed game", minimum_amount=4_500, quantity_limit=20)
    backer = UserFactory(username="bea", password="analytical-engine-1843")
    pledge = pledge_held(campaign=campaign, backer=backer, amount=2_000)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, "bea", campaign.get_absolute_url(), password="analytical-engine-1843")
    page.wait_for_selector("text=Manage your pledge")
    assert page.locator("text=Back this project").count() == 0
    shot(page, "01-campaign")

    page.click("a.button-block:has-text('Manage your pledge')")
    page.wait_for_selector("h1:has-text('Manage your pledge')")
    page.select_option("#id_reward", str(boxed.pk))
    page.fill("#id_amount", "45")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    shot(page, "02-manage")
    page.click("button:has-text('Save changes')")
    page.wait_for_selector("text=Only the difference, $25.00, was charged.")
    shot(page, "03-raised")

    page.click("a:has-text('Manage your pledge')")
    page.fill("#id_amount", "60")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("button:has-text('Save changes')")
    page.wait_for_selector("text=Only the difference, $15.00, was charged.")
    page.click("a:has-text('Manage your pledge')")
    page.fill("#id_amount", "50")
    page.click("button:has-text('Save changes')")
    page.wait_for_selector("text=The difference, $10.00, is on its way back to your card.")
    page.goto(f"{live_server.url}/pledges/")
    page.click("summary:has-text('Changed 3 times')")
    shot(page, "04-my-pledges")

    assert Pledge.objects.get() == pledge
    pledge.refresh_from_db()
    assert (pledge.amount, pledge.reward) == (5_000, boxed)
    assert net_charged(pledge) == 5_000
    assert invariant_problems() == []

"""In headless Chromium: a backer opens the pledge form at a price step's 20.00, the step fills
meanwhile, and the form refuses with the new price and asks again at it."""

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, log_in
from pledges.models import Pledge
from projects.models import RewardTier
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

pytestmark = BROWSER_MARKS


@pytest.mark.django_db(transaction=True)
def test_a_backer_sees_the_price_step_change_and_pledges_at_the_new_price(live_server, browser):
    campaign = LiveCampaignFactory(title="Tiny Dungeon", goal=50_000)
    reward = RewardTierFactory(
        campaign=campaign,
        title="Boxed game",
        minimum_amount=2_500,
        claimed_count=99,
        price_steps=[{"price": 2_000, "until_claimed": 100, "until": None}],
    )
    backer = UserFactory(username="bea")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, backer.username, f"/pledges/new/{campaign.slug}/?reward={reward.pk}")
    page.wait_for_selector("text=first 100 at $20.00, then $25.00")
    assert page.input_value("input[name=amount]") == "20.00"
    # Someone else takes the last 20.00 slot while the form is open.
    RewardTier.objects.filter(pk=reward.pk).update(claimed_count=100)
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("button.button-block[type=submit]")  # the pledge button, not the header's log out
    page.wait_for_selector("text=it is now $25.00")
    page.screenshot(path=str(ARTIFACTS / "price-step-changed.png"), full_page=True)
    assert page.locator(".reward-amount", has_text="$25.00+").count() == 1
    assert not Pledge.objects.exists()
    page.fill("input[name=amount]", "25.00")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("button.button-block[type=submit]")  # the pledge button, not the header's log out
    page.wait_for_selector("text=Thank you for backing")
    assert Pledge.objects.get().amount == 2_500

"""In headless Chromium: a backer answers the survey, the initiator marks the reward shipped, the
backer confirms receipt, and the campaign's "where the money is" page shows the holdback released."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.money import format_amount
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, log_in
from fulfilment.models import Delivery, DeliveryStatus, Resolution, Shipment, SurveyAnswer
from fulfilment.services import deliveries_resolve_silent, survey_send
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.holdback import holdbacks_settle_ready
from settlement.verification import ledger_verify

from .helpers import holdback_balance, succeed

pytestmark = BROWSER_MARKS


@pytest.mark.django_db(transaction=True)
def test_shipped_confirmed_and_silent_backers_release_the_holdback_on_the_money_page(live_server, browser):
    call_command("setup_staff_groups", verbosity=0)  # a transactional test may have flushed them
    campaign = LiveCampaignFactory(goal=1, platform_fee_bps=500, delivery_holdback_bps=1_000)
    tier = RewardTierFactory(campaign=campaign, minimum_amount=1, title="Field notebook")
    bella, carl = UserFactory(username="bella"), UserFactory(username="carl")
    bellas = pledge_held(campaign=campaign, backer=bella, amount=6_000, reward=tier)
    pledge_held(campaign=campaign, backer=carl, amount=4_000, reward=tier)
    campaign = succeed(campaign)
    kept = holdback_balance(campaign)
    assert kept == 1_000  # 10 % of the reward pledges
    survey_send(campaign_id=campaign.pk, actor=campaign.initiator, asks_address=True, questions=[])
    base, money_path = live_server.url, f"/campaigns/{campaign.slug}/money/"

    backer = browser.new_page()
    log_in(backer, base, bella.username, "/pledges/")
    backer.fill(f"form[action='/fulfilment/pledges/{bellas.pk}/survey/'] textarea[name=address]", "1 Elm St, Leeds")
    backer.click("button:has-text('Save answers')")
    backer.wait_for_selector("text=your survey answers are saved")
    assert SurveyAnswer.objects.get(pledge=bellas).address == "1 Elm St, Leeds"
    backer.goto(base + money_path)
    held = format_amount(kept, campaign.currency)
    assert backer.inner_text("#money-holdback-held").strip() == held
    assert backer.inner_text("#money-holdback-released").strip() == format_amount(0, campaign.currency)

    initiator = browser.new_page()
    log_in(initiator, base, campaign.initiator.username, f"/fulfilment/campaigns/{campaign.slug}/deliveries/")
    initiator.fill("input[name=shipped_on]", timezone.localdate().isoformat())
    initiator.fill("input[name=tracking_reference]", "TRK-4711")
    initiator.click("button:has-text('Mark shipped')")
    initiator.wait_for_selector("text=The reward is marked shipped")
    initiator.screenshot(path=str(ARTIFACTS / "delivery-shipped.png"), full_page=True)
    assert Shipment.objects.get(tier=tier).tracking_reference == "TRK-4711"

    backer.goto(f"{base}/pledges/")
    backer.wait_for_selector("text=TRK-4711")
    backer.click("button:has-text('I received it')")
    backer.wait_for_selector("text=your reward is confirmed received")
    assert Delivery.objects.get(pledge=bellas).status == DeliveryStatus.RECEIVED

    # Carl never answers: 30 days after shipping his silence counts as received, and beat's
    # sweep releases the tier's whole holdback to the initiator.
    deliveries_resolve_silent(today=timezone.localdate() + timedelta(days=31))
    assert Delivery.objects.get(backer=carl).resolution == Resolution.SILENCE
    assert holdbacks_settle_ready() == [tier.pk]

    backer.goto(base + money_path)
    assert backer.inner_text("#money-holdback-released").strip() == held
    assert backer.inner_text("#money-holdback-held").strip() == format_amount(0, campaign.currency)
    backer.screenshot(path=str(ARTIFACTS / "delivery-holdback-released.png"), full_page=True)
    assert holdback_balance(campaign) == 0
    assert ledger_verify() == []

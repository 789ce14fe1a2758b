"""The delivery holdback end to end: real Celery worker and beat, a real Redis broker, PostgreSQL.

Success keeps the holdback; the initiator ships both tiers; one backer confirms, one reports and
staff uphold it; the clock is moved past the silence (the shipment's ``silence_until`` into the
past) and beat counts the silent backer as received; beat's sweep then releases the delivered
share and refunds exactly the upheld backer's part.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.money import allocate
from escrow.models import GatewayOperation
from escrow.vocabulary import charge_key, payout_key
from escrow.vocabulary_holdback import holdback_payout_key
from fulfilment.models import Delivery, DeliveryStatus, Holdback, Resolution, Shipment
from fulfilment.services import delivery_confirm, delivery_report, report_decide, tier_mark_shipped
from pledges.tests.factories import pledge_held
from projects.models import Campaign
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.tests.test_worker import _past_deadline, _wait_for, celery_processes, pytestmark  # noqa: F401
from settlement.verification import ledger_verify

from .helpers import finance_user, holdback_balance

pytestmark = [*pytestmark, pytest.mark.slow]

EVERY_SECOND = {
    "CLOSE_DUE_CAMPAIGNS_EVERY_SECONDS": "1",
    "RESOLVE_SILENT_DELIVERIES_EVERY_SECONDS": "1",
    "SETTLE_READY_HOLDBACKS_EVERY_SECONDS": "1",
}


def test_a_whole_life_holdback_kept_shipped_confirmed_reported_upheld_silent_released_and_refunded(
    celery_processes,  # noqa: F811
):
    campaign = LiveCampaignFactory(goal=10_000, platform_fee_bps=500)
    mug, shirt = (RewardTierFactory(campaign=campaign, minimum_amount=1_000) for _ in range(2))
    backers = [UserFactory() for _ in range(3)]
    confirmer = pledge_held(campaign=campaign, backer=backers[0], amount=5_000, reward=mug)
    reporter = pledge_held(campaign=campaign, backer=backers[1], amount=3_000, reward=mug)
    silent = pledge_held(campaign=campaign, backer=backers[2], amount=2_000, reward=shirt)
    _past_deadline(campaign)
    processes = [celery_processes("worker"), celery_processes("beat", **EVERY_SECOND)]
    _wait_for(
        lambda: Campaign.objects.filter(pk=campaign.pk, settled_at__isnull=False).exists(),
        what="beat to close the campaign and the worker to settle it",
        processes=processes,
    )
    assert Holdback.objects.get(campaign=campaign).amount == 1_000
    assert holdback_balance(campaign) == 1_000
    assert GatewayOperation.objects.get(idempotency_key=payout_key(campaign.pk)).amount == 9_000 - 450

    today = timezone.localdate()
    for tier in (mug, shirt):
        tier_mark_shipped(tier_id=tier.pk, actor=campaign.initiator, shipped_on=today, tracking_reference="TRK")
    delivery_confirm(pledge_id=confirmer.pk, actor=backers[0])
    report = delivery_report(pledge_id=reporter.pk, actor=backers[1], message="It never came.")
    report_decide(report_id=report.pk, actor=finance_user(), upheld=True, reason="Carrier confirms it was lost.")
    _wait_for(
        lambda: Shipment.objects.filter(tier=mug, settled_at__isnull=False).exists(),
        what="beat's sweep to settle the mug's holdback",
        processes=processes,
    )
    # Thirty days on: the silent backer of the shirt counts as received, once.
    Shipment.objects.filter(tier=shirt).update(silence_until=today - timedelta(days=1))
    _wait_for(
        lambda: Shipment.objects.filter(tier=shirt, settled_at__isnull=False).exists(),
        what="beat to count silence as received and settle the shirt's holdback",
        processes=processes,
    )
    silent_delivery = Delivery.objects.get(pledge=silent)
    assert (silent_delivery.status, silent_delivery.resolution) == (DeliveryStatus.RECEIVED, Resolution.SILENCE)
    parts = dict(Delivery.objects.values_list("pledge_id", "part"))
    assert parts == {confirmer.pk: 500, reporter.pk: 300, silent.pk: 200}
    assert GatewayOperation.objects.get(idempotency_key=charge_key(reporter.pk)).refunded_amount == 300
    assert GatewayOperation.objects.get(idempotency_key=charge_key(confirmer.pk)).refunded_amount == 0
    assert GatewayOperation.objects.get(idempotency_key=holdback_payout_key(mug.pk)).amount == 500 - 25
    fee = allocate(200, [500, 9_500])[0]
    assert GatewayOperation.objects.get(idempotency_key=holdback_payout_key(shirt.pk)).amount == 200 - fee
    assert holdback_balance(campaign) == 0
    assert ledger_verify() == []

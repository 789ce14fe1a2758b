"""The delivery holdback end to end: real Celery worker and beat, a real Redis broker, PostgreSQL.

Success keeps the holdback; the initiator ships both tiers; one backer confirms, one reports and
staff uphold it; the clock is moved past the silence (the shipment's ``silence_until`` into the
past) and beat counts the silent backer as received; beat's sweep then releases the delivered
share and refunds exactly the upheld backer's part. Then thousands of backers: a worker killed
in the middle of refunding a tier declared not delivered, and again in the middle of a shipped
tier's refunds before its release, is restarted and pays everyone exactly once.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.money import allocate
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind
from escrow.vocabulary import charge_key, payout_key
from escrow.vocabulary_holdback import HOLDBACK_PLEDGE_REFERENCE_PREFIX, holdback_payout_key
from fulfilment.models import Delivery, DeliveryStatus, Holdback, NonDelivery, Resolution, Shipment
from fulfilment.services import (
    delivery_confirm,
    delivery_report,
    report_decide,
    tier_declare_not_delivered,
    tier_mark_shipped,
)
from pledges.models import Pledge
from pledges.testing import held_pledges_create_bulk
from pledges.tests.factories import pledge_held
from projects.models import Campaign, RewardTier
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.tests.test_worker import _past_deadline, _wait_for, celery_processes, pytestmark  # noqa: F401
from settlement.verification import ledger_verify

from .helpers import finance_user, holdback_balance, succeed

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


PLEDGES = 6_000
BATCH = 50


def test_a_worker_killed_mid_holdback_refund_is_restarted_and_pays_every_backer_and_the_initiator_once(
    celery_processes,  # noqa: F811
):
    campaign = LiveCampaignFactory(goal=1, platform_fee_bps=500)
    mug, shirt = (RewardTierFactory(campaign=campaign, minimum_amount=1) for _ in range(2))
    held_pledges_create_bulk(campaign=campaign, count=PLEDGES, amount=lambda i: 1_000 + (i * 37) % 9_001)
    ids = list(Pledge.objects.filter(campaign=campaign).order_by("id").values_list("pk", flat=True))
    Pledge.objects.filter(pk__in=ids[::2]).update(reward=mug)
    Pledge.objects.filter(pk__in=ids[1::2]).update(reward=shirt)
    grace = timedelta(days=settings.FULFILMENT_NOT_DELIVERED_GRACE_DAYS + 1)
    RewardTier.objects.filter(pk=mug.pk).update(estimated_delivery=timezone.localdate() - grace)
    campaign = succeed(campaign)
    kept = Holdback.objects.get(campaign=campaign).amount
    # The mugs never shipped: staff declare them not delivered past their deadline. The shirts
    # shipped; three backers in four reported nothing came and staff upheld it, the rest received.
    tier_declare_not_delivered(tier_id=mug.pk, actor=finance_user(), reason="Never shipped.")
    tier_mark_shipped(tier_id=shirt.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    shirts = list(Delivery.objects.filter(tier=shirt).order_by("id").values_list("pk", flat=True))
    received = shirts[::4]
    Delivery.objects.filter(tier=shirt).exclude(pk__in=received).update(
        status=DeliveryStatus.UPHELD, resolution=Resolution.STAFF, resolved_at=timezone.now()
    )
    Delivery.objects.filter(pk__in=received).update(
        status=DeliveryStatus.RECEIVED, resolution=Resolution.BACKER, resolved_at=timezone.now()
    )
    owed = Delivery.objects.filter(status__in=[DeliveryStatus.UPHELD, DeliveryStatus.UNSHIPPED])
    owed_count = owed.count()
    refunded = owed.filter(refunded_amount__gt=0)
    worker_env = {"HOLDBACK_REFUND_BATCH_SIZE": str(BATCH)}
    workers = []

    def kill_once(*, when, what):
        workers.append(celery_processes("worker", **worker_env))
        # Beat sends the sweep every few minutes; it is what finds a tier a killed worker left.
        celery_processes.send("settlement.tasks.settle_ready_holdbacks")
        _wait_for(when, what=what, processes=workers, interval=0.02)
        workers[-1].kill()

    mugs = PLEDGES // 2
    kill_once(
        when=lambda: refunded.filter(tier=mug).count() >= mugs // 3, what="the mugs' refunds to get a third of the way"
    )
    assert NonDelivery.objects.get(tier=mug).settled_at is None, "the mugs were refunded before the worker was killed"
    kill_once(
        when=lambda: refunded.filter(tier=shirt).count() >= (len(shirts) - len(received)) // 3,
        what="the shirts' refunds to get a third of the way",
    )
    assert Shipment.objects.get(tier=shirt).settled_at is None, "the shirts settled before the worker was killed"
    assert not GatewayOperation.objects.filter(idempotency_key=holdback_payout_key(shirt.pk)).exists()

    workers.append(celery_processes("worker", **worker_env))
    celery_processes.send("settlement.tasks.settle_ready_holdbacks")
    _wait_for(
        lambda: Shipment.objects.filter(tier=shirt, settled_at__isnull=False).exists(),
        what="the restarted worker to finish both tiers",
        processes=workers,
    )
    assert NonDelivery.objects.get(tier=mug).settled_at is not None
    # Every backer owed their part got it back once, exactly their part, never above what they paid.
    refunds = GatewayOperation.objects.filter(kind=OperationKind.REFUND)
    assert refunds.count() == owed_count == refunded.count()
    postings = LedgerTransaction.objects.filter(reference__startswith=HOLDBACK_PLEDGE_REFERENCE_PREFIX)
    assert postings.count() == owed_count
    assert not postings.values("reference").annotate(n=Count("pk")).filter(n__gt=1).exists()
    parts = {pledge_id: (part, paid) for pledge_id, part, paid in owed.values_list("pledge_id", "part", "paid")}
    charges = dict(
        GatewayOperation.objects.filter(kind=OperationKind.CHARGE, refunded_amount__gt=0).values_list(
            "idempotency_key", "refunded_amount"
        )
    )
    assert charges == {charge_key(pledge_id): part for pledge_id, (part, _) in parts.items()}
    assert all(0 < part <= paid for part, paid in parts.values())
    # The initiator was paid the received shirts' parts once, less the fee on them.
    released = Delivery.objects.filter(pk__in=received).aggregate(t=Sum("part"))["t"]
    payout = GatewayOperation.objects.get(idempotency_key=holdback_payout_key(shirt.pk))
    assert payout.amount == released - allocate(released, [500, 9_500])[0]
    assert LedgerTransaction.objects.filter(idempotency_key=holdback_payout_key(shirt.pk)).count() == 1
    assert released + refunds.aggregate(t=Sum("amount"))["t"] == kept
    assert holdback_balance(campaign) == 0
    assert ledger_verify() == []

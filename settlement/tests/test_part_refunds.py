"""The one batch-refund helper of the holdback and the remainder: a refund the gateway refuses stops
the batch with the flow's own error and records nothing; once fixed, the batch is run again and
every backer is refunded exactly once."""

import pytest
from django.db.models import Sum

from escrow.models import GatewayOperation, OperationKind, OperationStatus
from fulfilment.models import Delivery, NonDelivery
from fulfilment.services import tier_declare_not_delivered
from fulfilment.tests.helpers import finance_user, holdback_balance, overdue_campaign
from pledges.models import Pledge, PledgeStatus
from settlement.holdback import HoldbackError, holdback_settle_tier
from settlement.models import RemainderCause, RemainderRefund
from settlement.remainder import RemainderRefundError, remainder_refund_run, remainder_refund_start
from settlement.tests.milestone_helpers import campaign_with_milestones, staged_balance, succeed
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


def _break_charge(pledge: Pledge) -> str:
    """Point the pledge at a charge the gateway never made (it refuses: charge_not_found)."""
    Pledge.objects.filter(pk=pledge.pk).update(payment_reference="ch_never_made")
    return pledge.payment_reference


def _refunded_at_gateway() -> int:
    return (
        GatewayOperation.objects.filter(kind=OperationKind.REFUND, status=OperationStatus.SUCCEEDED).aggregate(
            t=Sum("amount")
        )["t"]
        or 0
    )


def test_a_refused_holdback_refund_records_nothing_and_the_retry_refunds_everyone_once():
    campaign, (lost, _) = overdue_campaign([4_000, 6_000, 8_000, 2_000])
    tier_declare_not_delivered(tier_id=lost.pk, actor=finance_user(), reason="Never shipped.")
    kept = holdback_balance(campaign)
    broken = Pledge.objects.filter(reward=lost).order_by("id").last()
    reference = _break_charge(broken)

    with pytest.raises(HoldbackError, match="charge_not_found"):
        holdback_settle_tier(tier_id=lost.pk)
    assert set(Delivery.objects.filter(tier=lost).values_list("refunded_amount", flat=True)) == {0}
    assert holdback_balance(campaign) == kept
    assert NonDelivery.objects.get(tier=lost).settled_at is None

    Pledge.objects.filter(pk=broken.pk).update(payment_reference=reference)
    holdback_settle_tier(tier_id=lost.pk)
    owed = sum(Delivery.objects.filter(tier=lost).values_list("part", flat=True))
    assert NonDelivery.objects.get(tier=lost).refunded_amount == owed
    assert _refunded_at_gateway() == owed  # the backers refunded before the refusal were not paid twice
    assert holdback_balance(campaign) == kept - owed
    assert ledger_verify() == []


def test_a_refused_remainder_refund_records_nothing_and_the_retry_refunds_everyone_once():
    campaign = succeed(campaign_with_milestones([3_000, 7_000]), pledges=5, amount=lambda i: 1_000 + 337 * i)
    remainder_refund_start(campaign=campaign, actor=campaign.initiator, cause=RemainderCause.ABANDONED, enqueue=False)
    staged = staged_balance(campaign)
    broken = Pledge.objects.filter(campaign=campaign, status=PledgeStatus.RELEASED).order_by("id").last()
    reference = _break_charge(broken)

    with pytest.raises(RemainderRefundError, match="charge_not_found"):
        remainder_refund_run(campaign_id=campaign.pk)
    job = RemainderRefund.objects.get(campaign=campaign)
    assert (job.refunded_amount, job.refunded_count, job.finished_at) == (0, 0, None)
    assert staged_balance(campaign) == staged

    Pledge.objects.filter(pk=broken.pk).update(payment_reference=reference)
    job = remainder_refund_run(campaign_id=campaign.pk)
    assert (job.refunded_amount, job.refunded_count) == (staged, 5)
    assert _refunded_at_gateway() == staged
    assert staged_balance(campaign) == 0
    assert ledger_verify() == []

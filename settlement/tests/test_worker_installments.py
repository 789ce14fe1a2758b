"""Pay over time on real Celery worker and beat processes, a real Redis broker and PostgreSQL.

The clock is moved as the loan worker test moves it: the plan's due dates and next attempts
are moved back, so that the next installment (or retry) falls due now, and beat's
``charge_due_installments`` (every second here) charges it once.
"""

import datetime

import pytest
from django.db.models import F, Sum
from django.utils import timezone

from accounts.tests.factories import UserFactory
from escrow.models import GatewayOperation, OperationKind, OperationStatus
from escrow.vocabulary_installments import INSTALLMENT_CHARGE_KEY_PREFIX, installment_payout_key
from pledges.models import InstallmentPaidTo, InstallmentStatus, Pledge, PledgeInstallment, PledgeStatus
from pledges.services import pledge_create
from pledges.tests.factories import new_key
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.tests.test_worker import _past_deadline, _wait_for, celery_processes, pytestmark  # noqa: F401
from settlement.verification import ledger_verify

pytestmark = [*pytestmark, pytest.mark.slow]

EVERY_SECOND = {"CLOSE_DUE_CAMPAIGNS_EVERY_SECONDS": "1", "CHARGE_DUE_INSTALLMENTS_EVERY_SECONDS": "1"}


def _pledge_over_time(campaign, *, reward=None) -> Pledge:
    return pledge_create(
        backer=UserFactory(password=None),
        campaign=campaign,
        amount=15_001,
        currency="USD",
        payment_token="tok_visa",
        idempotency_key=new_key(),
        reward=reward,
        pay_over_time=True,
    )


def _move_clock(pledge: Pledge, shift: datetime.timedelta) -> None:
    """Move the plan's time forward by ``shift``: its due dates and next attempts come nearer."""
    PledgeInstallment.objects.filter(pledge=pledge).update(
        due_at=F("due_at") - shift, next_attempt_at=F("next_attempt_at") - shift
    )


def _until_due(installment: PledgeInstallment) -> datetime.timedelta:
    installment.refresh_from_db()
    return installment.next_attempt_at - timezone.now()


def _installment_charges(pledge: Pledge):
    keys = [f"{INSTALLMENT_CHARGE_KEY_PREFIX}{pk}:" for pk in pledge.installments.values_list("pk", flat=True)]
    charges = GatewayOperation.objects.filter(kind=OperationKind.CHARGE, status=OperationStatus.SUCCEEDED)
    return [c for c in charges if any(c.idempotency_key.startswith(k) for k in keys)]


def test_three_installments_are_paid_month_by_month_into_escrow_then_to_the_initiator(celery_processes):  # noqa: F811
    campaign = LiveCampaignFactory(goal=10_000, platform_fee_bps=500)
    pledge = _pledge_over_time(campaign)
    _first, second, third = pledge.installments.order_by("number")
    processes = [celery_processes("worker"), celery_processes("beat", **EVERY_SECOND)]

    _move_clock(pledge, _until_due(second))  # a month later, while the campaign is live
    _wait_for(
        lambda: PledgeInstallment.objects.filter(pk=second.pk, status=InstallmentStatus.PAID).exists(),
        what="beat to charge the second installment into escrow",
        processes=processes,
    )
    _past_deadline(campaign)
    _wait_for(
        lambda: Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SUCCEEDED).exists(),
        what="beat to close the campaign and the worker to release it",
        processes=processes,
    )
    _move_clock(pledge, _until_due(third))  # two months after the pledge: after the release
    _wait_for(
        lambda: PledgeInstallment.objects.filter(pk=third.pk, status=InstallmentStatus.PAID).exists(),
        what="beat to charge the third installment and pay it to the initiator",
        processes=processes,
    )
    for process in processes:
        process.stop()

    second.refresh_from_db(), third.refresh_from_db()
    assert (second.paid_to, third.paid_to) == (InstallmentPaidTo.ESCROW, InstallmentPaidTo.INITIATOR)
    charges = _installment_charges(pledge)
    assert sorted(c.amount for c in charges) == [5_000, 5_000]  # one charge each, never twice
    first_charge = GatewayOperation.objects.get(kind=OperationKind.CHARGE, idempotency_key=f"charge:pledge:{pledge.pk}")
    assert first_charge.amount == 5_001
    payout = GatewayOperation.objects.get(idempotency_key=installment_payout_key(third.pk))
    assert payout.amount == 5_000 - 250  # the fee taken as settlement takes it
    # What the initiator got in all: 100.01 released with the campaign and 50.00 after, less 5 % of each.
    payouts = GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).aggregate(total=Sum("amount"))["total"]
    assert payouts == (10_001 - 500) + (5_000 - 250)
    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.RELEASED
    assert pledge.amount == 15_001
    assert ledger_verify() == []


def test_a_failing_card_is_retried_at_7_and_14_days_then_the_pledge_drops_its_reward(celery_processes):  # noqa: F811
    campaign = LiveCampaignFactory(goal=1_000_000)
    big = RewardTierFactory(campaign=campaign, minimum_amount=15_000)
    small = RewardTierFactory(campaign=campaign, minimum_amount=4_000)
    pledge = _pledge_over_time(campaign, reward=big)
    PledgeInstallment.objects.filter(pledge=pledge, number__gt=1).update(payment_token="tok_chargeDeclined")
    second = pledge.installments.get(number=2)
    processes = [celery_processes("worker"), celery_processes("beat", **EVERY_SECOND)]

    for declines in (1, 2, 3):  # due, then 7 and 14 days later
        _move_clock(pledge, _until_due(second))
        _wait_for(
            lambda n=declines: PledgeInstallment.objects.filter(pk=second.pk, declines=n).exists(),
            what=f"decline {declines} of the second installment",
            processes=processes,
        )
    _wait_for(
        lambda: Pledge.objects.filter(pk=pledge.pk, amount=5_001).exists(),
        what="the plan to end with the pledge at what was paid",
        processes=processes,
    )
    for process in processes:
        process.stop()

    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.HELD
    assert pledge.reward_id == small.pk
    assert [i.status for i in pledge.installments.order_by("number")] == [
        InstallmentStatus.PAID,
        InstallmentStatus.FAILED,
        InstallmentStatus.CANCELLED,
    ]
    second.refresh_from_db()
    assert second.attempts == 3  # three attempts, each under its own key
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 5_001
    assert ledger_verify() == []

"""Late pledges' weekly release on real Celery worker and beat processes, a real Redis broker and PostgreSQL.

The campaign succeeds, backers pledge late, and the clock is moved forward a week at a time (the
campaign's deadline and the pledges' times moved back by 7 days, so that a week has just ended):
beat's ``release_late_pledges`` releases each week's late pledges in one batch, pays the initiator
the batch less the fee, once, and verify_ledger is OK. A worker killed right after the gateway
paid a batch out is replaced, and the batch is finished with one payout.
"""

from datetime import timedelta

import pytest
from django.db.models import F

from escrow.ledger import account_balances
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind
from escrow.vocabulary import campaign_escrow_code, campaign_payable_code
from escrow.vocabulary_late import late_payout_key
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign
from settlement.models import LateReleaseBatch, LateReleaseStatus
from settlement.tests.test_worker import _wait_for, celery_processes, pytestmark  # noqa: F401
from settlement.verification import ledger_verify

from .late_helpers import LATE_PRICE, late_pledge, succeeded_with_late_offer

pytestmark = [*pytestmark, pytest.mark.slow]

EVERY_SECOND = {"RELEASE_LATE_PLEDGES_EVERY_SECONDS": "1"}


def _move_clock_a_week(campaign) -> None:
    """Move the campaign's time forward 7 days: its deadline and its pledges' times come 7 days nearer."""
    week = timedelta(days=7)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=F("deadline") - week, settled_at=F("settled_at") - week)
    Pledge.objects.filter(campaign=campaign).update(created_at=F("created_at") - week, held_at=F("held_at") - week)
    LateReleaseBatch.objects.filter(campaign=campaign).update(period_end=F("period_end") - week)


def _balance(code: str) -> int:
    return account_balances(codes=[code]).get((code, "USD"), 0)


def test_beat_releases_two_weeks_of_late_pledges_each_once_minus_the_fee(celery_processes):  # noqa: F811
    campaign, reward = succeeded_with_late_offer(fee_bps=500)
    week_one = [late_pledge(campaign=campaign, reward=reward, amount=LATE_PRICE + n) for n in range(3)]
    processes = [celery_processes("worker"), celery_processes("beat", **EVERY_SECOND)]

    _move_clock_a_week(campaign)
    _wait_for(
        lambda: LateReleaseBatch.objects.filter(campaign=campaign, week=1, status=LateReleaseStatus.PAID).exists(),
        what="beat's release_late_pledges to release and pay week 1",
        processes=processes,
    )
    week_two = [late_pledge(campaign=campaign, reward=reward, amount=LATE_PRICE * 2)]
    _move_clock_a_week(campaign)
    _wait_for(
        lambda: LateReleaseBatch.objects.filter(campaign=campaign, week=2, status=LateReleaseStatus.PAID).exists(),
        what="beat's release_late_pledges to release and pay week 2",
        processes=processes,
    )
    for process in processes:
        process.stop()

    batches = list(LateReleaseBatch.objects.filter(campaign=campaign).order_by("week"))
    assert [b.week for b in batches] == [1, 2]
    assert [sorted(b.items.values_list("pledge_id", flat=True)) for b in batches] == [
        sorted(p.pk for p in week_one),
        [week_two[0].pk],
    ]
    assert [b.amount for b in batches] == [3 * LATE_PRICE + 3, 2 * LATE_PRICE]
    assert [b.fee for b in batches] == [450, 300]  # 5 % of each week's total, as at success
    for batch in batches:
        payouts = GatewayOperation.objects.filter(kind=OperationKind.PAYOUT, idempotency_key=late_payout_key(batch.pk))
        assert list(payouts.values_list("amount", flat=True)) == [batch.amount - batch.fee]
    assert set(Pledge.objects.filter(is_late=True).values_list("status", flat=True)) == {PledgeStatus.RELEASED}
    assert _balance(campaign_escrow_code(campaign.pk)) == 0
    assert _balance(campaign_payable_code(campaign.pk)) == 0
    assert ledger_verify() == []


def test_a_worker_killed_after_the_payout_is_replaced_and_the_week_is_paid_once(celery_processes):  # noqa: F811
    campaign, reward = succeeded_with_late_offer()
    for _ in range(2):
        late_pledge(campaign=campaign, reward=reward)
    dying = celery_processes(
        "worker", PAYMENT_GATEWAY="settlement.tests.late_dying_gateway.SandboxGatewayDyingAfterPayout"
    )
    beat = celery_processes("beat", **EVERY_SECOND)
    _move_clock_a_week(campaign)
    _wait_for(
        lambda: dying.popen.poll() is not None, what="the worker to die after the payout", processes=[dying, beat]
    )
    batch = LateReleaseBatch.objects.get(campaign=campaign)
    assert batch.status == LateReleaseStatus.RELEASED  # paid at the gateway, not yet in the ledger
    assert ledger_verify() == []

    worker = celery_processes("worker")
    _wait_for(
        lambda: LateReleaseBatch.objects.filter(pk=batch.pk, status=LateReleaseStatus.PAID).exists(),
        what="a new worker to finish the batch",
        processes=[worker, beat],
    )
    worker.stop()
    beat.stop()
    batch.refresh_from_db()
    assert (
        GatewayOperation.objects.filter(kind=OperationKind.PAYOUT, idempotency_key=late_payout_key(batch.pk)).count()
        == 1
    )
    assert LedgerTransaction.objects.filter(idempotency_key=late_payout_key(batch.pk)).count() == 1
    assert batch.net == 2 * LATE_PRICE - batch.fee
    assert ledger_verify() == []

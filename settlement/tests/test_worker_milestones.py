"""Staged release end to end: real Celery worker and beat processes, a real Redis broker, PostgreSQL.

The clock is moved by moving the rows' due times (deadline, end of vote) into the past, as the
settlement worker tests do.
"""

from datetime import timedelta

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.money import allocate
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind
from escrow.vocabulary import charge_key, payout_key
from escrow.vocabulary_tranches import tranche_payout_key
from pledges.models import Pledge
from pledges.testing import held_pledges_create_bulk
from pledges.tests.factories import pledge_held
from projects.milestones.models import Milestone, MilestoneStatus
from projects.milestones.services import milestone_sign_off, milestone_submit_proof, milestone_vote
from projects.models import Campaign
from settlement.models import RemainderCause, RemainderRefund
from settlement.remainder import remainder_refund_start
from settlement.services import campaigns_close_due, settlement_run
from settlement.tests.milestone_helpers import campaign_with_milestones, finance_user, staged_balance
from settlement.tests.test_worker import _past_deadline, _wait_for, celery_processes, pytestmark  # noqa: F401
from settlement.verification import ledger_verify

pytestmark = [*pytestmark, pytest.mark.slow]

EVERY_SECOND = {
    "CLOSE_DUE_CAMPAIGNS_EVERY_SECONDS": "1",
    "CLOSE_MILESTONE_VOTES_EVERY_SECONDS": "1",
    "RELEASE_TRANCHES_EVERY_SECONDS": "1",
    "DETECT_OVERDUE_MILESTONES_EVERY_SECONDS": "1",
}


def test_a_whole_life_success_first_tranche_proof_vote_sign_off_second_tranche_abandonment_refund(
    celery_processes,  # noqa: F811
):
    campaign = campaign_with_milestones([3_000, 3_000, 4_000], goal=10_000, fee_bps=500)
    backers = [UserFactory() for _ in range(3)]
    pledges = [
        pledge_held(campaign=campaign, backer=b, amount=a) for b, a in zip(backers, [6_000, 3_000, 1_003], strict=True)
    ]
    _past_deadline(campaign)
    # The refund is queued by this process on the default queue, not the test's: the worker finds it
    # the way it finds a stalled one, through beat's overdue sweep (stalled at once with 0 s).
    worker = celery_processes("worker", SETTLEMENT_STUCK_AFTER_SECONDS="0")
    processes = [worker, celery_processes("beat", **EVERY_SECOND)]

    _wait_for(
        lambda: Campaign.objects.filter(pk=campaign.pk, settled_at__isnull=False).exists(),
        what="beat to close the campaign and the worker to pay out the first tranche",
        processes=processes,
    )
    first, second, third = Milestone.objects.filter(campaign=campaign).order_by("position")
    assert first.status == MilestoneStatus.RELEASED
    assert (
        GatewayOperation.objects.get(idempotency_key=payout_key(campaign.pk)).amount
        == first.amount - allocate(first.amount, [500, 9_500])[0]
    )
    assert [first.amount, second.amount, third.amount] == allocate(10_003, [3_000, 3_000, 4_000])

    second = milestone_submit_proof(milestone=second, actor=campaign.initiator, proof_text="Prototype photos")
    milestone_vote(milestone=second, backer=backers[0], approve=True)
    milestone_vote(milestone=second, backer=backers[2], approve=False)
    Milestone.objects.filter(pk=second.pk).update(vote_closes_at=timezone.now() - timedelta(seconds=1))
    _wait_for(
        lambda: Milestone.objects.filter(pk=second.pk, status=MilestoneStatus.APPROVED).exists(),
        what="beat to close the vote",
        processes=processes,
    )
    milestone_sign_off(milestone=second, actor=finance_user())
    _wait_for(
        lambda: Milestone.objects.filter(pk=second.pk, status=MilestoneStatus.RELEASED).exists(),
        what="the worker to release the signed-off tranche",
        processes=processes,
    )
    payout = GatewayOperation.objects.get(idempotency_key=tranche_payout_key(second.pk))
    assert payout.amount == second.amount - allocate(second.amount, [500, 9_500])[0]

    remainder_refund_start(campaign=campaign, actor=campaign.initiator, cause=RemainderCause.ABANDONED, enqueue=False)
    _wait_for(
        lambda: RemainderRefund.objects.filter(campaign=campaign, finished_at__isnull=False).exists(),
        what="the worker to refund the remainder",
        processes=processes,
    )
    parts = allocate(third.amount, [6_000, 3_000, 1_003])
    charges = [GatewayOperation.objects.get(idempotency_key=charge_key(p.pk)).refunded_amount for p in pledges]
    assert charges == parts
    assert staged_balance(campaign) == 0
    assert ledger_verify() == []


PLEDGES = 10_000
BATCH = 100


def test_a_worker_killed_mid_refund_of_the_remainder_is_restarted_and_refunds_every_backer_once(
    celery_processes,  # noqa: F811
):
    campaign = campaign_with_milestones([3_000, 7_000], goal=1)
    held_pledges_create_bulk(campaign=campaign, count=PLEDGES)
    _past_deadline(campaign)
    assert campaigns_close_due(enqueue_settlement=False) == [campaign.pk]
    settlement_run(campaign_id=campaign.pk)
    worker_env = {"REMAINDER_REFUND_BATCH_SIZE": str(BATCH), "SETTLEMENT_STUCK_AFTER_SECONDS": "0"}
    worker = celery_processes("worker", **worker_env)
    job = remainder_refund_start(
        campaign=campaign, actor=campaign.initiator, cause=RemainderCause.ABANDONED, enqueue=False
    )
    celery_processes.send("settlement.tasks.detect_overdue_milestones")  # finds it stalled, enqueues it
    jobs = RemainderRefund.objects.filter(pk=job.pk)
    _wait_for(
        lambda: jobs.filter(refunded_count__gte=PLEDGES // 4).exists(),
        what="the refund of the remainder to get a quarter of the way",
        processes=[worker],
        interval=0.02,
    )
    worker.kill()
    assert jobs.get().finished_at is None, "the refund finished before the worker could be killed"

    restarted = celery_processes("worker", **worker_env)
    # The sweep (beat sends it hourly) finds the stalled refund and enqueues it again.
    celery_processes.send("settlement.tasks.detect_overdue_milestones")
    _wait_for(
        lambda: jobs.filter(finished_at__isnull=False).exists(),
        what="the restarted worker to finish the refund",
        processes=[worker, restarted],
    )
    job = jobs.get()
    parts = LedgerTransaction.objects.filter(reference__startswith="remainder:pledge:")
    assert parts.count() == PLEDGES == job.refunded_count
    assert not parts.values("reference").annotate(n=Count("pk")).filter(n__gt=1).exists()
    refunds = GatewayOperation.objects.filter(kind=OperationKind.REFUND)
    assert refunds.count() == PLEDGES
    assert refunds.aggregate(t=Sum("amount"))["t"] == job.amount == job.refunded_amount
    paid = dict(Pledge.objects.filter(campaign=campaign).values_list("pk", "amount"))
    refunded = GatewayOperation.objects.filter(kind=OperationKind.CHARGE).values_list(
        "idempotency_key", "refunded_amount"
    )
    assert all(0 < amount <= paid[int(key.rsplit(":", 1)[1])] for key, amount in refunded)
    assert staged_balance(campaign) == 0
    assert ledger_verify() == []

"""Staged release: tranches at success and after proof, vote and sign-off; the remainder refunded."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import allocate
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind
from escrow.vocabulary import charge_key, payout_key
from escrow.vocabulary_tranches import tranche_payout_key
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_held
from projects.milestones.models import Milestone, MilestoneStatus, MilestoneVote
from projects.milestones.services import (
    milestone_extend,
    milestone_reject,
    milestone_sign_off,
    milestone_submit_proof,
    milestone_vote,
    milestone_votes_close_due,
    milestones_plan_set,
)
from projects.tests.factories import CampaignFactory
from settlement.models import RemainderCause, RemainderRefund
from settlement.remainder import milestones_end_overdue, remainder_refund_run, remainder_refund_start
from settlement.tests.checks import money_state
from settlement.tests.milestone_helpers import (
    campaign_with_milestones,
    finance_user,
    plan,
    staged_balance,
    succeed,
)
from settlement.tranches import tranche_release
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


def payout_amount(key: str) -> int:
    return GatewayOperation.objects.get(kind=OperationKind.PAYOUT, idempotency_key=key).amount


def refunded_at_gateway(pledge: Pledge) -> int:
    return GatewayOperation.objects.get(idempotency_key=charge_key(pledge.pk)).refunded_amount


def open_vote(milestone: Milestone) -> Milestone:
    return milestone_submit_proof(
        milestone=milestone, actor=milestone.campaign.initiator, proof_text="It works: photos"
    )


def close_vote(milestone: Milestone) -> Milestone:
    milestone_votes_close_due(now=timezone.now() + timedelta(days=7, seconds=1))
    milestone.refresh_from_db()
    return milestone


def test_a_whole_life_first_tranche_at_success_second_after_vote_and_sign_off_then_the_rest_refunded():
    campaign = campaign_with_milestones([3_000, 3_000, 4_000], goal=10_000, fee_bps=500)
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    pledges = [
        pledge_held(campaign=campaign, backer=u, amount=a) for u, a in ((alice, 6_001), (bob, 3_000), (carol, 1_000))
    ]
    campaign = succeed(campaign)
    assert all(p.status == PledgeStatus.RELEASED for p in Pledge.objects.filter(campaign=campaign))
    first, second, third = campaign.milestones.order_by("position")
    raised = 10_001
    assert [first.amount, second.amount, third.amount] == allocate(raised, [3_000, 3_000, 4_000])
    assert first.status == MilestoneStatus.RELEASED
    # The initiator got the first tranche less 5 % on it alone; the rest stays in escrow.
    assert payout_amount(payout_key(campaign.pk)) == first.amount - allocate(first.amount, [500, 9_500])[0]
    assert staged_balance(campaign) == raised - first.amount
    assert ledger_verify() == []

    second = open_vote(second)
    assert second.status == MilestoneStatus.VOTING
    milestone_vote(milestone=second, backer=alice, approve=True)
    milestone_vote(milestone=second, backer=carol, approve=False)
    assert close_vote(second).status == MilestoneStatus.APPROVED
    assert (second.approve_amount, second.reject_amount) == (6_001, 1_000)
    with pytest.raises(Conflict):
        tranche_release(milestone_id=second.pk)  # Finance has not signed off
    milestone_sign_off(milestone=second, actor=finance_user())
    second = tranche_release(milestone_id=second.pk)
    assert second.status == MilestoneStatus.RELEASED
    assert payout_amount(tranche_payout_key(second.pk)) == second.amount - allocate(second.amount, [500, 9_500])[0]
    assert staged_balance(campaign) == third.amount
    assert ledger_verify() == []

    remainder_refund_start(campaign=campaign, actor=campaign.initiator, cause=RemainderCause.ABANDONED, enqueue=False)
    job = remainder_refund_run(campaign_id=campaign.pk, batch_size=2)
    third.refresh_from_db()
    assert third.status == MilestoneStatus.FAILED
    parts = allocate(third.amount, [6_001, 3_000, 1_000])
    assert [refunded_at_gateway(p) for p in pledges] == parts
    assert job.refunded_amount == third.amount == sum(parts)
    assert staged_balance(campaign) == 0
    # No fee on what was refunded: revenue is the fees on the two tranches only.
    assert ledger_verify() == []
    assert AuditEvent.objects.filter(action="remainder_refund_start", object_id=str(campaign.pk)).count() == 1


def test_running_the_refund_of_the_remainder_twice_refunds_each_pledge_once():
    campaign = succeed(campaign_with_milestones([2_000, 8_000]), pledges=50)
    remainder_refund_start(campaign=campaign, actor=campaign.initiator, cause=RemainderCause.ABANDONED, enqueue=False)
    remainder_refund_run(campaign_id=campaign.pk, batch_size=7)
    RemainderRefund.objects.filter(campaign=campaign).update(after_pledge_id=0, finished_at=None)
    remainder_refund_run(campaign_id=campaign.pk, batch_size=7)  # a replay from the start posts nothing new
    assert LedgerTransaction.objects.filter(reference__startswith="remainder:pledge:").count() == 50
    assert GatewayOperation.objects.filter(idempotency_key__startswith="refund:remainder:").count() == 50
    assert staged_balance(campaign) == 0
    assert ledger_verify() == []


def test_shares_that_do_not_add_up_or_a_first_tranche_over_the_cap_are_refused_and_nothing_is_stored():
    campaign = CampaignFactory()
    for shares, code in (([3_000, 6_000], "shares_not_whole"), ([3_001, 6_999], "first_tranche_over_cap")):
        with pytest.raises(InvalidInput) as refused:
            milestones_plan_set(campaign=campaign, actor=campaign.initiator, plan=plan(shares))
        assert refused.value.code == code
    with pytest.raises(InvalidInput):
        milestones_plan_set(campaign=campaign, actor=campaign.initiator, plan=plan([1_000] * 9 + [1_000]))
    with pytest.raises(NotAllowed):
        milestones_plan_set(campaign=campaign, actor=UserFactory(), plan=plan([3_000, 7_000]))
    assert not Milestone.objects.exists()


def test_votes_by_non_backers_or_twice_proof_by_someone_else_and_release_before_sign_off_change_nothing():
    campaign = campaign_with_milestones([3_000, 7_000])
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer, amount=5_000)
    campaign = succeed(campaign)
    second = campaign.milestones.get(position=2)
    with pytest.raises(NotAllowed):
        milestone_submit_proof(milestone=second, actor=UserFactory(), proof_text="not mine")
    with pytest.raises(Conflict):
        milestone_vote(milestone=second, backer=backer, approve=True)  # no vote open yet
    second = open_vote(second)
    milestone_vote(milestone=second, backer=backer, approve=True)
    before = (money_state(), list(MilestoneVote.objects.values_list("pk", "approve")))
    with pytest.raises(NotAllowed):
        milestone_vote(milestone=second, backer=UserFactory(), approve=False)
    with pytest.raises(Conflict) as twice:
        milestone_vote(milestone=second, backer=backer, approve=False)
    assert twice.value.code == "already_voted"
    with pytest.raises(Conflict):
        tranche_release(milestone_id=second.pk)
    with pytest.raises(NotAllowed):
        milestone_sign_off(milestone=second, actor=UserFactory(is_staff=True))
    assert (money_state(), list(MilestoneVote.objects.values_list("pk", "approve"))) == before
    second.refresh_from_db()
    assert second.status == MilestoneStatus.VOTING


def test_a_vote_with_too_little_turnout_is_rejected_with_the_reason_and_may_be_resubmitted_twice():
    campaign = campaign_with_milestones([3_000, 7_000])
    small, big = UserFactory(), UserFactory()
    pledge_held(campaign=campaign, backer=small, amount=50)
    pledge_held(campaign=campaign, backer=big, amount=9_950)
    second = succeed(campaign).milestones.get(position=2)
    for _ in range(3):
        second = open_vote(second)
        milestone_vote(milestone=second, backer=small, approve=True)  # 0.5 % of the pledged amount
        second = close_vote(second)
        assert second.status == MilestoneStatus.REJECTED
        assert "10 %" in second.decision_reason
    with pytest.raises(Conflict) as refused:
        open_vote(second)
    assert refused.value.code == "no_resubmissions_left"
    assert second.resubmissions == 2


def test_finance_rejects_with_a_reason_and_declaring_failure_needs_one_too():
    campaign = campaign_with_milestones([3_000, 7_000])
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer, amount=10_000)
    second = succeed(campaign).milestones.get(position=2)
    second = open_vote(second)
    milestone_vote(milestone=second, backer=backer, approve=True)
    second = close_vote(second)
    finance = finance_user()
    with pytest.raises(InvalidInput):
        milestone_reject(milestone=second, actor=finance, reason=" ")
    second = milestone_reject(milestone=second, actor=finance, reason="The photos are of another product")
    assert second.status == MilestoneStatus.REJECTED
    with pytest.raises(InvalidInput):
        remainder_refund_start(campaign=campaign, actor=finance, cause=RemainderCause.DECLARED_FAILED, reason="")
    with pytest.raises(NotAllowed):
        remainder_refund_start(campaign=campaign, actor=UserFactory(), cause=RemainderCause.ABANDONED)
    remainder_refund_start(
        campaign=campaign, actor=finance, cause=RemainderCause.DECLARED_FAILED, reason="No product", enqueue=False
    )
    with pytest.raises(Conflict):
        remainder_refund_start(campaign=campaign, actor=campaign.initiator, cause=RemainderCause.ABANDONED)
    remainder_refund_run(campaign_id=campaign.pk)
    assert refunded_at_gateway(Pledge.objects.get(campaign=campaign)) == 7_000
    assert ledger_verify() == []


def test_an_overdue_milestone_gets_one_extension_and_past_it_the_rest_is_refunded():
    campaign = campaign_with_milestones([3_000, 7_000])
    pledge_held(campaign=campaign, amount=10_000)
    second = succeed(campaign).milestones.get(position=2)
    late = second.target_date + timedelta(days=1)
    milestones_end_overdue(today=late)
    second.refresh_from_db()
    assert second.status == MilestoneStatus.OVERDUE
    with pytest.raises(InvalidInput):
        milestone_extend(milestone=second, actor=campaign.initiator, new_date=second.target_date + timedelta(days=91))
    Milestone.objects.filter(pk=second.pk).update(target_date=timezone.localdate() - timedelta(days=1))
    second.refresh_from_db()
    second = milestone_extend(
        milestone=second, actor=campaign.initiator, new_date=timezone.localdate() + timedelta(days=60)
    )
    assert second.status == MilestoneStatus.PLANNED
    with pytest.raises(Conflict):
        milestone_extend(milestone=second, actor=campaign.initiator, new_date=timezone.localdate() + timedelta(days=61))
    assert milestones_end_overdue(today=timezone.localdate() + timedelta(days=61)) == [campaign.pk]
    remainder_refund_run(campaign_id=campaign.pk)
    second.refresh_from_db()
    assert second.status == MilestoneStatus.FAILED
    assert refunded_at_gateway(Pledge.objects.get(campaign=campaign)) == 7_000
    assert RemainderRefund.objects.get(campaign=campaign).cause == RemainderCause.OVERDUE
    assert ledger_verify() == []


def test_backers_are_asked_to_vote_and_the_initiator_hears_the_result_once(
    celery_eager, django_capture_on_commit_callbacks
):
    campaign = campaign_with_milestones([3_000, 7_000])
    backers = [UserFactory(), UserFactory()]
    for backer in backers:
        pledge_held(campaign=campaign, backer=backer, amount=5_000)
    second = succeed(campaign).milestones.get(position=2)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        second = open_vote(second)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(b.email for b in backers)
    assert all("vote on a milestone's proof" in m.subject for m in mail.outbox)
    assert "It works: photos" in mail.outbox[0].body
    milestone_vote(milestone=second, backer=backers[0], approve=True)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        close_vote(second)
        milestone_votes_close_due(now=timezone.now() + timedelta(days=8))  # a second run sends nothing new
    assert [(m.to[0], m.subject) for m in mail.outbox] == [
        (campaign.initiator.email, f'Backers approved "{second.title}"')
    ]

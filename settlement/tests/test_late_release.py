"""Settlement's weekly release of late pledges: once per campaign and week, fee as at success, verified."""

from datetime import timedelta

import pytest

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import campaign_escrow_code, campaign_payable_code
from escrow.vocabulary_late import late_payout_key
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_refund
from settlement.late_release import late_batch_finish, late_releases_run
from settlement.models import LateReleaseBatch, LateReleaseItem, LateReleaseStatus
from settlement.selectors import late_release_summary
from settlement.verification import ledger_verify

from .late_helpers import LATE_PRICE, late_pledge, succeeded_with_late_offer

pytestmark = pytest.mark.django_db


def _balance(code: str) -> int:
    return account_balances(codes=[code]).get((code, "USD"), 0)


def _held_at(pledge, when) -> None:
    Pledge.objects.filter(pk=pledge.pk).update(held_at=when)


def test_each_week_releases_the_late_pledges_held_before_it_ended_once_minus_the_fee():
    campaign, reward = succeeded_with_late_offer(fee_bps=500)
    deadline = campaign.deadline
    first = [late_pledge(campaign=campaign, reward=reward, amount=LATE_PRICE + n) for n in (0, 1, 2)]
    for pledge in first:
        _held_at(pledge, deadline + timedelta(days=2))

    assert late_releases_run(now=deadline + timedelta(days=6)) == []  # week 1 has not ended
    late_releases_run(now=deadline + timedelta(days=7, hours=1))
    late_releases_run(now=deadline + timedelta(days=8))  # again in the same week: nothing more

    batch = LateReleaseBatch.objects.get()
    released = 3 * LATE_PRICE + 3
    assert (batch.week, batch.status, batch.amount, batch.pledge_count) == (1, LateReleaseStatus.PAID, released, 3)
    assert (batch.fee, batch.net) == (450, released - 450)  # 5 % of 90.03, as settlement splits it at success
    payout = GatewayOperation.objects.get(idempotency_key=late_payout_key(batch.pk))
    assert (payout.kind, payout.amount) == (OperationKind.PAYOUT, batch.net)
    assert all(p.status == PledgeStatus.RELEASED for p in Pledge.objects.filter(is_late=True))
    assert _balance(campaign_escrow_code(campaign.pk)) == 0
    assert _balance(campaign_payable_code(campaign.pk)) == 0
    assert ledger_verify() == []

    # Week 2: one pledge held then; one held in week 3 waits for week 3's batch.
    second = late_pledge(campaign=campaign, reward=reward)
    _held_at(second, deadline + timedelta(days=9))
    third = late_pledge(campaign=campaign, reward=reward)
    _held_at(third, deadline + timedelta(days=15))
    late_releases_run(now=deadline + timedelta(days=15))
    week2 = LateReleaseBatch.objects.get(week=2)
    assert list(week2.items.values_list("pledge_id", flat=True)) == [second.pk]
    third.refresh_from_db()
    assert third.status == PledgeStatus.HELD
    summary = late_release_summary(campaign_id=campaign.pk)
    assert (summary["waiting_amount"], summary["waiting_count"]) == (LATE_PRICE, 1)
    assert [b.week for b in summary["batches"]] == [2, 1]
    assert _balance(campaign_escrow_code(campaign.pk)) == LATE_PRICE
    assert ledger_verify() == []
    assert AuditEvent.objects.filter(action="late_release").count() == 2


def test_a_week_without_late_pledges_makes_no_batch_and_a_refunded_one_is_left_out():
    campaign, reward = succeeded_with_late_offer()
    refunded = late_pledge(campaign=campaign, reward=reward)
    pledge_refund(pledge=refunded, actor=FinanceFactory(), reason="fraud")
    late_releases_run(now=campaign.deadline + timedelta(days=7, seconds=1))
    assert not LateReleaseBatch.objects.exists()
    assert ledger_verify() == []


def test_a_batch_a_crash_left_collecting_is_finished_by_the_next_run(settings):
    campaign, reward = succeeded_with_late_offer()
    pledges = [late_pledge(campaign=campaign, reward=reward) for _ in range(3)]
    now = campaign.deadline + timedelta(days=7, seconds=1)
    # A worker made the batch and released one pledge (batches of 1), then died.
    batch = LateReleaseBatch.objects.create(campaign=campaign, week=1, period_end=now - timedelta(seconds=1))
    settings.LATE_RELEASE_BATCH_SIZE = 1
    from settlement import late_release

    late_release._collect(batch=batch, batch_size=1)  # the first transaction, committed
    assert ledger_verify() == []  # a batch in the middle of collecting is consistent too

    late_releases_run(now=now)

    batch.refresh_from_db()
    assert (batch.status, batch.pledge_count) == (LateReleaseStatus.PAID, 3)
    assert LateReleaseItem.objects.filter(pledge__in=pledges).count() == 3
    assert (
        GatewayOperation.objects.filter(kind=OperationKind.PAYOUT, idempotency_key=late_payout_key(batch.pk)).count()
        == 1
    )
    assert ledger_verify() == []
    payouts = GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).count()
    assert late_batch_finish(batch_id=batch.pk).status == LateReleaseStatus.PAID  # once more: nothing moves
    assert GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).count() == payouts


def _released_week(campaign, reward):
    late_pledge(campaign=campaign, reward=reward)
    late_releases_run(now=campaign.deadline + timedelta(days=7, seconds=1))
    return LateReleaseBatch.objects.get(campaign=campaign)


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        ("amount", "Weekly batches whose release, fee or payout differs"),
        ("fee", "Weekly batches whose release, fee or payout differs"),
        ("unbatched", "Late pledges released outside a weekly batch"),
        ("held_after_close", "Late pledges held after their campaign closed late pledges"),
        ("below_price", "below its late price"),
    ],
)
def test_verify_ledger_names_broken_late_data(breakage, problem):
    campaign, reward = succeeded_with_late_offer()
    batch = _released_week(campaign, reward)
    assert ledger_verify() == []
    if breakage == "amount":
        LateReleaseBatch.objects.filter(pk=batch.pk).update(amount=batch.amount + 1)
    elif breakage == "fee":
        LateReleaseBatch.objects.filter(pk=batch.pk).update(fee=batch.fee + 1, net=batch.net - 1)
    elif breakage == "unbatched":
        LateReleaseItem.objects.filter(batch=batch).delete()
    elif breakage == "held_after_close":
        from projects.models import LatePledgeOffer

        LatePledgeOffer.objects.filter(campaign=campaign).update(
            status="closed", closed_at=campaign.deadline + timedelta(seconds=1)
        )
    elif breakage == "below_price":
        from projects.models import LatePledgeReward

        LatePledgeReward.objects.filter(reward=reward).update(price=LATE_PRICE + 1)
    problems = ledger_verify()
    assert any(problem in p for p in problems), problems


def test_verify_ledger_names_a_settled_campaign_whose_escrow_holds_more_than_its_late_pledges():
    campaign, reward = succeeded_with_late_offer()
    pledge = late_pledge(campaign=campaign, reward=reward)
    Pledge.objects.filter(pk=pledge.pk).update(amount=LATE_PRICE - 1)
    problems = ledger_verify()
    assert any("Settled campaigns with money left" in p for p in problems), problems

"""Rounds under real concurrency on PostgreSQL: paid once, and never into a campaign being settled."""

import time
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import StaffFactory
from crowdfund_site.exceptions import Conflict
from crowdfund_site.tests.concurrency import run_together
from escrow.models import LedgerTransaction
from matching.models import Allocation, AllocationOutcome, Round, RoundStatus
from matching.selectors import pool_balance
from matching.services import round_end, round_pay, round_publish
from matching.tests.factories import funded_pool, open_round
from pledges.tests.factories import pledge_held
from projects.models import Campaign
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.tests.checks import escrow_balance
from settlement.verification import ledger_verify

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def _round_ready_to_pay():
    """Two campaigns, A (goal reached) and B, in a round whose challenge window is over."""
    a = LiveCampaignFactory(goal=10_000)
    b = LiveCampaignFactory(goal=10_000)
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    later = matching_round.ends_at + timedelta(seconds=1)
    round_end(matching_round=matching_round, now=later)
    round_publish(matching_round=matching_round, now=timezone.now() - timedelta(days=4))
    return pool, Round.objects.get(pk=matching_round.pk), a, b


def test_two_staff_paying_the_same_round_at_once_pay_it_once():
    pool, matching_round, a, b = _round_ready_to_pay()
    staff = StaffFactory()
    results = run_together([partial(round_pay, matching_round=matching_round, actor=staff) for _ in range(2)])

    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Round"]
    assert all(r.code == "invalid_state" for r in results if isinstance(r, Conflict))
    assert LedgerTransaction.objects.filter(reference=f"round:{matching_round.pk}").count() == 1
    assert escrow_balance(a) == 10_000 + 75_000
    assert escrow_balance(b) == 10_000 + 25_000
    assert pool_balance(pool=pool) == 0
    assert ledger_verify() == []


def _close_and_settle(campaign_id: int) -> None:
    # Closing skips a campaign whose row is locked (the round being paid): try again, as beat does.
    for _ in range(200):
        if campaign_id in campaigns_close_due(enqueue_settlement=False):
            break
        time.sleep(0.01)
    settlement_run(campaign_id=campaign_id)


def test_a_round_paid_while_its_campaign_closes_leaves_every_cent_accounted():
    for _attempt in range(3):
        pool, matching_round, a, _b = _round_ready_to_pay()
        Campaign.objects.filter(pk=a.pk).update(deadline=timezone.now() - timedelta(seconds=1))
        run_together(
            [
                partial(round_pay, matching_round=matching_round, actor=StaffFactory()),
                partial(_close_and_settle, a.pk),
            ]
        )
        a.refresh_from_db()
        allocation = Allocation.objects.get(round=matching_round, campaign=a)
        assert a.settled_at is not None
        assert escrow_balance(a) == 0
        # Paid first: released with A's pledges. Closed first: never paid, still in the pool.
        assert allocation.outcome in (AllocationOutcome.RELEASED, AllocationOutcome.NOT_PAID)
        expected_left = 0 if allocation.outcome == AllocationOutcome.RELEASED else 75_000
        assert pool_balance(pool=pool) == expected_left
        assert Round.objects.get(pk=matching_round.pk).status == RoundStatus.PAID
        assert ledger_verify() == []

"""What a pool leaves: shared by its next round, back to the sponsor, or on to their next pool."""

from datetime import timedelta

import pytest

from accounts.models import AuditEvent
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from escrow.models import GatewayOperation, LedgerTransaction
from matching.models import Allocation, LeftoverChoice
from matching.selectors import match_estimates, pool_balance
from matching.services import pool_choose_leftover, pool_close
from matching.tests.factories import funded_pool, open_round, sponsor_create
from matching.tests.test_services import pay
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.checks import invariant_problems

pytestmark = pytest.mark.django_db


def _after_end(pool):
    return pool.ends_at + timedelta(seconds=1)


def test_what_a_round_leaves_is_shared_by_the_pools_next_round():
    a, b = LiveCampaignFactory(), LiveCampaignFactory()
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=60_000)
    first = open_round(pool)
    for _ in range(3):
        pledge_held(campaign=a, amount=2_500)
    pay(first)
    assert Allocation.objects.get(round=first).amount == 60_000  # capped: 40,000 stay in the pool
    second = open_round(pool)
    for _ in range(3):
        pledge_held(campaign=b, amount=2_500)
    (estimate,) = match_estimates(campaign=b, amount=1_000)
    assert estimate.high <= 40_000
    paid = pay(second)
    # The second round (its dates overlap the first's, so A's pledges count in it too) shares
    # what is left, not the pool's first 1,000.00 again; without that it could not be paid.
    assert paid.budget == 40_000
    assert sum(Allocation.objects.filter(round=second).values_list("amount", flat=True)) == 40_000
    assert pool_balance(pool=pool) == 0
    assert invariant_problems() == []


def test_the_sponsor_rolls_what_is_left_over_into_their_next_pool():
    sponsor = sponsor_create()
    campaign, other = LiveCampaignFactory(), LiveCampaignFactory()
    old = funded_pool(sponsor=sponsor, amount=30_000, campaigns=[campaign], name="Spring fund")
    new = funded_pool(sponsor=sponsor, amount=50_000, campaigns=[campaign, other], per_campaign_cap=50_000)
    pool_choose_leftover(pool=old, actor=sponsor, choice=LeftoverChoice.ROLL_OVER, next_pool=new)
    refunds = GatewayOperation.objects.count()
    closed = pool_close(pool=old, actor=sponsor, now=_after_end(old))
    assert (closed.leftover, closed.next_pool_id) == (30_000, new.pk)
    assert pool_balance(pool=old) == 0
    assert pool_balance(pool=new) == 80_000
    assert GatewayOperation.objects.count() == refunds  # no refund through the gateway
    # Run again (a retry after a crash): nothing moves twice.
    transactions = LedgerTransaction.objects.count()
    pool_close(pool=old, actor=sponsor, now=_after_end(old))
    assert LedgerTransaction.objects.count() == transactions
    assert invariant_problems() == []
    # The next pool's round shares both.
    matching_round = open_round(new)
    for backed in (campaign, other):
        for _ in range(2):
            pledge_held(campaign=backed, amount=2_500)
    pay(matching_round)
    assert sorted(Allocation.objects.filter(round=matching_round).values_list("amount", flat=True)) == [
        40_000,
        40_000,
    ]
    assert invariant_problems() == []
    assert AuditEvent.objects.filter(action="matching_pool_leftover_choice").count() == 1


def test_by_default_what_is_left_goes_back_to_the_sponsor():
    pool = funded_pool(amount=30_000, campaigns=[LiveCampaignFactory()])
    closed = pool_close(pool=pool, actor=pool.sponsor, now=_after_end(pool))
    assert (closed.leftover, closed.next_pool_id) == (30_000, None)
    assert pool_balance(pool=pool) == 0
    assert invariant_problems() == []


def test_a_roll_over_to_a_pool_that_is_not_the_sponsors_or_not_open_is_refused():
    sponsor = sponsor_create()
    campaign = LiveCampaignFactory()
    pool = funded_pool(sponsor=sponsor, amount=30_000, campaigns=[campaign])
    someone_elses = funded_pool(amount=30_000, campaigns=[campaign])
    cases = [
        (NotAllowed, {"choice": LeftoverChoice.ROLL_OVER, "next_pool": someone_elses}, "next_pool_other_sponsor"),
        (InvalidInput, {"choice": LeftoverChoice.ROLL_OVER, "next_pool": pool}, "next_pool_itself"),
        (InvalidInput, {"choice": LeftoverChoice.ROLL_OVER}, "next_pool_required"),
        (InvalidInput, {"choice": "burn"}, "invalid_choice"),
    ]
    for error, kwargs, code in cases:
        with pytest.raises(error) as refused:
            pool_choose_leftover(pool=pool, actor=sponsor, **kwargs)
        assert refused.value.code == code
    with pytest.raises(NotAllowed):
        pool_choose_leftover(pool=pool, actor=someone_elses.sponsor, choice=LeftoverChoice.REFUND)
    pool.refresh_from_db()
    assert (pool.leftover_choice, pool.next_pool_id) == (LeftoverChoice.REFUND, None)
    pool_close(pool=pool, actor=sponsor, now=_after_end(pool))
    later = funded_pool(sponsor=sponsor, amount=10_000, campaigns=[campaign])
    with pytest.raises(Conflict):
        pool_choose_leftover(pool=pool, actor=sponsor, choice=LeftoverChoice.ROLL_OVER, next_pool=later)

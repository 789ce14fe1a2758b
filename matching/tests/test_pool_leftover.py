"""What a pool leaves: shared by its next round, back to the sponsor, or on to their next pool."""

from datetime import timedelta

import pytest

from accounts.models import AuditEvent
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from escrow.gateway import get_gateway
from escrow.models import GatewayOperation, LedgerTransaction
from escrow.vocabulary import pool_refund_part_key
from matching.models import Allocation, LeftoverChoice
from matching.selectors import match_estimates, pool_balance
from matching.services import pool_choose_leftover, pool_close
from matching.tests.factories import funded_pool, open_round, sponsor_create
from matching.tests.test_services import pay
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.checks import invariant_problems
from settlement.tests.test_settlement import close_and_settle

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


def _refunded_per_charge() -> dict[str, int]:
    totals: dict[str, int] = {}
    for op in GatewayOperation.objects.filter(kind="refund", status="succeeded").select_related("charge"):
        totals[op.charge.reference] = totals.get(op.charge.reference, 0) + op.amount
    return totals


def test_what_a_pool_rolled_into_gives_back_is_refunded_against_each_charge_it_came_from():
    sponsor = sponsor_create()
    campaign = LiveCampaignFactory()
    first = funded_pool(sponsor=sponsor, amount=20_000, campaigns=[campaign], name="Winter fund")
    spring = funded_pool(sponsor=sponsor, amount=30_000, campaigns=[campaign], name="Spring fund")
    summer = funded_pool(sponsor=sponsor, amount=50_000, campaigns=[campaign], name="Summer fund")
    pool_choose_leftover(pool=first, actor=sponsor, choice=LeftoverChoice.ROLL_OVER, next_pool=spring)
    pool_close(pool=first, actor=sponsor, now=_after_end(first))
    pool_choose_leftover(pool=spring, actor=sponsor, choice=LeftoverChoice.ROLL_OVER, next_pool=summer)
    pool_close(pool=spring, actor=sponsor, now=_after_end(spring))
    assert pool_balance(pool=summer) == 100_000  # 50,000 of its own, 50,000 rolled in: more than its charge
    closed = pool_close(pool=summer, actor=sponsor, now=_after_end(summer))
    assert closed.leftover == 100_000
    assert pool_balance(pool=summer) == 0
    charges = {p.payment_reference: p.amount for p in (first, spring, summer)}
    refunded = _refunded_per_charge()
    assert refunded == charges  # each sponsor's charge refunded whole, none above itself
    # A retry after a crash refunds nothing again.
    operations = GatewayOperation.objects.count()
    pool_close(pool=summer, actor=sponsor, now=_after_end(summer))
    assert GatewayOperation.objects.count() == operations
    assert invariant_problems() == []


def test_a_pool_that_spent_some_of_what_rolled_in_refunds_its_own_charge_first():
    sponsor = sponsor_create()
    a, b = LiveCampaignFactory(goal=1_000), LiveCampaignFactory()
    old = funded_pool(sponsor=sponsor, amount=30_000, campaigns=[a], name="Spring fund")
    new = funded_pool(sponsor=sponsor, amount=50_000, campaigns=[a, b], per_campaign_cap=10_000)
    pool_choose_leftover(pool=old, actor=sponsor, choice=LeftoverChoice.ROLL_OVER, next_pool=new)
    pool_close(pool=old, actor=sponsor, now=_after_end(old))
    matching_round = open_round(new)
    for _ in range(2):
        pledge_held(campaign=a, amount=2_500)
    pay(matching_round)
    assert close_and_settle(a).status == CampaignStatus.SUCCEEDED  # the 100.00 matched is spent
    assert pool_balance(pool=new) == 70_000  # a cap kept the rest in the pool
    closed = pool_close(pool=new, actor=sponsor, now=_after_end(new))
    assert closed.leftover == 70_000
    assert _refunded_per_charge() == {new.payment_reference: 50_000, old.payment_reference: 20_000}
    assert invariant_problems() == []
    # verify_ledger notices a refund of the pool beyond what was left.
    get_gateway().refund(
        idempotency_key=pool_refund_part_key(new.pk, 0), charge_reference=old.payment_reference, amount=100
    )
    assert any("gateway refunds differ from what was left" in p for p in invariant_problems())

"""Pools funded, rounds ended, published and paid, matched money settling with its campaign."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, PaymentDeclined
from escrow.ledger import Posting, account_balances, ledger_accounts_get_or_create, ledger_post
from escrow.models import AccountKind, GatewayOperation, LedgerTransaction, OperationKind, TransactionKind
from escrow.vocabulary import PLATFORM_REVENUE, initiator_payout_code, pool_funds_code, sponsor_funding_code
from matching.models import Allocation, AllocationOutcome, Pool, PoolMode, Round, RoundStatus
from matching.selectors import pool_balance
from matching.services import (
    pool_close,
    pool_create,
    pool_fund,
    round_create,
    round_end,
    round_exclude_contribution,
    round_pay,
    round_publish,
    rounds_end_due,
)
from matching.tests.factories import funded_pool, open_round, sponsor_create
from pledges.services import pledge_cancel
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus, FundingModel
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaign_cancel, settlement_run
from settlement.tests.checks import escrow_balance, invariant_problems
from settlement.tests.test_settlement import close_and_settle

pytestmark = pytest.mark.django_db


def balance(code: str) -> int:
    return account_balances(codes=[code]).get((code, "USD"), 0)


@pytest.fixture
def two_campaigns():
    """A: four backers give 25.00 (weight 300.00); B: two give 50.00 (weight 100.00). 1,000.00 pool."""
    a = LiveCampaignFactory(goal=10_000, platform_fee_bps=500)
    b = LiveCampaignFactory(goal=100_000, platform_fee_bps=500)
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    return pool, matching_round, a, b


def pay(matching_round, staff=None):
    later = matching_round.ends_at + timedelta(seconds=1)
    matching_round = round_end(matching_round=matching_round, now=later)
    matching_round = round_publish(matching_round=matching_round, now=later)
    return round_pay(matching_round=matching_round, actor=staff or StaffFactory(), now=later + timedelta(days=3))


def test_a_funded_pool_holds_the_sponsors_money_in_its_own_account():
    pool = funded_pool(amount=50_000, campaigns=[LiveCampaignFactory()])
    assert pool.funded_at is not None
    assert balance(pool_funds_code(pool.pk)) == 50_000
    assert balance(sponsor_funding_code(pool.sponsor_id)) == -50_000
    # Funding again charges and posts nothing more.
    assert pool_fund(pool=pool, actor=pool.sponsor, payment_token="tok_visa").funded_at == pool.funded_at
    assert balance(pool_funds_code(pool.pk)) == 50_000
    assert invariant_problems() == []


def test_a_declined_card_leaves_the_pool_unfunded():
    sponsor = sponsor_create()
    now = timezone.now()
    pool = pool_create(
        actor=sponsor,
        sponsor=sponsor,
        name="Fund",
        currency="USD",
        amount=10_000,
        mode=PoolMode.PRO_RATA,
        starts_at=now,
        ends_at=now + timedelta(days=1),
        campaigns=[LiveCampaignFactory()],
    )
    with pytest.raises(PaymentDeclined):
        pool_fund(pool=pool, actor=sponsor, payment_token="tok_chargeDeclined")
    pool.refresh_from_db()
    assert pool.funded_at is None
    assert not LedgerTransaction.objects.exists()
    with pytest.raises(Conflict):
        open_round(pool)


def test_paying_a_round_moves_each_allocation_into_its_campaigns_escrow(two_campaigns):
    pool, matching_round, a, b = two_campaigns
    matching_round = pay(matching_round)

    assert matching_round.status == RoundStatus.PAID
    assert dict(Allocation.objects.values_list("campaign_id", "amount")) == {a.pk: 75_000, b.pk: 25_000}
    assert escrow_balance(a) == 10_000 + 75_000
    assert escrow_balance(b) == 10_000 + 25_000
    assert pool_balance(pool=pool) == 0
    assert LedgerTransaction.objects.filter(reference=f"round:{matching_round.pk}").count() == 1
    assert invariant_problems() == []


def test_matched_money_is_released_with_a_success_and_returned_on_a_failure(two_campaigns):
    pool, matching_round, a, b = two_campaigns
    pay(matching_round)

    a = close_and_settle(a)
    b = close_and_settle(b)

    assert (a.status, b.status) == (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED)
    # A: 100.00 pledged + 750.00 matched, 5 % fee on all of it.
    assert balance(PLATFORM_REVENUE) == 4_250
    assert balance(initiator_payout_code(a.initiator_id)) == 80_750
    assert escrow_balance(a) == escrow_balance(b) == 0
    # B's backers got their pledges back and its 250.00 went back to the pool.
    assert pool_balance(pool=pool) == 25_000
    outcomes = dict(Allocation.objects.values_list("campaign_id", "outcome"))
    assert outcomes == {a.pk: AllocationOutcome.RELEASED, b.pk: AllocationOutcome.RETURNED}
    assert invariant_problems() == []


def test_a_cancelled_campaign_gives_its_matched_money_back_to_the_pool(
    two_campaigns, django_capture_on_commit_callbacks
):
    pool, matching_round, a, _b = two_campaigns
    pay(matching_round)
    campaign_cancel(campaign=a, actor=StaffFactory(), reason="fraud", enqueue_settlement=False)
    settlement_run(campaign_id=a.pk)
    assert escrow_balance(a) == 0
    assert pool_balance(pool=pool) == 75_000
    assert invariant_problems() == []


def test_paying_a_round_twice_is_refused_and_moves_nothing(two_campaigns):
    _pool, matching_round, _a, _b = two_campaigns
    matching_round = pay(matching_round)
    before = LedgerTransaction.objects.count()
    with pytest.raises(Conflict) as refused:
        round_pay(matching_round=matching_round, actor=StaffFactory(), now=timezone.now() + timedelta(days=10))
    assert refused.value.code == "invalid_state"
    assert LedgerTransaction.objects.count() == before


def test_a_round_is_paid_only_after_its_challenge_window_and_only_by_finance(two_campaigns):
    _pool, matching_round, _a, _b = two_campaigns
    later = matching_round.ends_at + timedelta(seconds=1)
    with pytest.raises(Conflict):
        round_end(matching_round=matching_round, now=matching_round.ends_at - timedelta(seconds=1))
    round_end(matching_round=matching_round, now=later)
    round_publish(matching_round=matching_round, now=later)
    with pytest.raises(NotAllowed):
        round_pay(matching_round=matching_round, actor=UserFactory(), now=later + timedelta(days=4))
    with pytest.raises(Conflict) as early:
        round_pay(matching_round=matching_round, actor=StaffFactory(), now=later + timedelta(days=2))
    assert early.value.code == "challenge_window_open"
    assert not LedgerTransaction.objects.filter(reference=f"round:{matching_round.pk}").exists()


def test_a_campaign_closed_before_payment_gets_nothing_and_the_money_stays(two_campaigns):
    pool, matching_round, a, b = two_campaigns
    later = matching_round.ends_at + timedelta(seconds=1)
    round_end(matching_round=matching_round, now=later)
    round_publish(matching_round=matching_round, now=later)
    close_and_settle(b)
    round_pay(matching_round=matching_round, actor=StaffFactory(), now=later + timedelta(days=3))
    assert escrow_balance(a) == 10_000 + 75_000
    assert pool_balance(pool=pool) == 25_000
    assert Allocation.objects.get(campaign=b).outcome == AllocationOutcome.NOT_PAID
    assert invariant_problems() == []


# --- Bad input: a clear error and nothing written ------------------------------------------------


def _pool_kwargs(sponsor, **overrides):
    now = timezone.now()
    kwargs = {
        "actor": sponsor,
        "sponsor": sponsor,
        "name": "Fund",
        "currency": "USD",
        "amount": 100_000,
        "mode": PoolMode.QUADRATIC,
        "starts_at": now,
        "ends_at": now + timedelta(days=30),
        "campaigns": [LiveCampaignFactory()],
    }
    kwargs.update(overrides)
    return kwargs


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"amount": 0}, InvalidInput, "amount_not_positive"),
        ({"per_campaign_cap": 100_001}, InvalidInput, "cap_above_pool"),
        ({"mode": PoolMode.FIXED_RATIO, "per_backer_cap": 200_000}, InvalidInput, "cap_above_pool"),
        ({"ends_at": timezone.now() - timedelta(days=1)}, InvalidInput, "ends_before_start"),
        ({"campaigns": [], "categories": []}, InvalidInput, "eligibility_required"),
        ({"mode": "lottery"}, InvalidInput, "invalid_mode"),
    ],
)
def test_a_bad_pool_is_refused_and_nothing_is_written(overrides, error, code):
    sponsor = sponsor_create()
    with pytest.raises(error) as refused:
        pool_create(**_pool_kwargs(sponsor, **overrides))
    assert refused.value.code == code
    assert not Pool.objects.exists()


def test_a_sponsor_cannot_match_their_own_campaign():
    sponsor = sponsor_create()
    with pytest.raises(NotAllowed) as refused:
        pool_create(**_pool_kwargs(sponsor, campaigns=[LiveCampaignFactory(initiator=sponsor)]))
    assert refused.value.code == "own_campaign"
    assert not Pool.objects.exists()


def test_only_sponsors_put_up_pools_and_staff_may_for_them():
    with pytest.raises(NotAllowed) as refused:
        pool_create(**_pool_kwargs(UserFactory()))
    assert refused.value.code == "not_a_sponsor"
    sponsor = sponsor_create()
    with pytest.raises(NotAllowed):
        pool_create(**_pool_kwargs(sponsor, actor=UserFactory()))
    assert pool_create(**_pool_kwargs(sponsor, actor=StaffFactory())).sponsor == sponsor


def test_the_sponsors_own_campaign_in_an_eligible_category_is_not_matched():
    sponsor = sponsor_create()
    own = LiveCampaignFactory(initiator=sponsor)
    other = LiveCampaignFactory(category=own.category)
    pool = funded_pool(sponsor=sponsor, categories=[own.category], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for campaign in (own, other):
        for _ in range(2):
            pledge_held(campaign=campaign, amount=5_000)
    pay(matching_round)
    assert dict(Allocation.objects.values_list("campaign_id", "amount")) == {other.pk: 100_000}


def test_a_round_ending_before_it_starts_is_refused():
    pool = funded_pool(campaigns=[LiveCampaignFactory()])
    now = timezone.now()
    with pytest.raises(InvalidInput) as refused:
        round_create(pool=pool, actor=pool.sponsor, starts_at=now, ends_at=now - timedelta(hours=1))
    assert refused.value.code == "ends_before_start"
    assert not Round.objects.exists()


def test_verify_ledger_names_a_pool_whose_balance_is_off():
    pool = funded_pool(amount=50_000, campaigns=[LiveCampaignFactory()])
    accounts = ledger_accounts_get_or_create(
        specs=[(pool_funds_code(pool.pk), AccountKind.ESCROW), ("someone:else", AccountKind.PAYOUT)], currency="USD"
    )
    ledger_post(
        posting=Posting(
            kind=TransactionKind.ADJUSTMENT,
            idempotency_key="leak",
            reference="leak",
            currency="USD",
            legs=[(accounts[pool_funds_code(pool.pk)], -60_000), (accounts["someone:else"], 60_000)],
        )
    )
    problems = invariant_problems()
    assert any("Pool balance differs" in p and f"pool {pool.pk}" in p for p in problems)
    assert any("allocated more than they hold" in p for p in problems)


# --- Challenge window -----------------------------------------------------------------------------


def test_staff_exclude_a_fraudulent_contribution_and_the_round_is_recomputed(two_campaigns):
    _pool, matching_round, a, b = two_campaigns
    later = matching_round.ends_at + timedelta(seconds=1)
    round_end(matching_round=matching_round, now=later)
    round_publish(matching_round=matching_round, now=later)
    staff = StaffFactory()
    # Without one of B's two backers, B has a single backer and no quadratic weight left.
    pledge = b.pledges.first()
    round_exclude_contribution(
        matching_round=matching_round, pledge=pledge, actor=staff, reason="one card, many backers"
    )
    assert dict(Allocation.objects.values_list("campaign_id", "amount")) == {a.pk: 100_000}
    event = AuditEvent.objects.get(action="matching_contribution_exclude")
    assert (event.actor, event.reason, event.details) == (staff, "one card, many backers", {"pledge": pledge.pk})
    with pytest.raises(InvalidInput):
        round_exclude_contribution(matching_round=matching_round, pledge=pledge, actor=staff, reason=" ")
    round_pay(matching_round=matching_round, actor=staff, now=later + timedelta(days=3))
    assert escrow_balance(a) == 10_000 + 100_000
    assert escrow_balance(b) == 10_000
    assert invariant_problems() == []


def test_contributions_cannot_be_excluded_outside_the_challenge_window(two_campaigns):
    _pool, matching_round, _a, b = two_campaigns
    with pytest.raises(Conflict):
        round_exclude_contribution(
            matching_round=matching_round, pledge=b.pledges.first(), actor=StaffFactory(), reason="fraud"
        )
    assert not Allocation.objects.exists()


def test_a_pool_with_pairwise_damping_discounts_a_pair_who_back_everything_together():
    a, b, c = (LiveCampaignFactory() for _ in range(3))
    pool = funded_pool(amount=10_000, campaigns=[a, b, c], per_campaign_cap=10_000, pairwise_damping=2_500)
    matching_round = open_round(pool)
    x, y = UserFactory(), UserFactory()
    for campaign in (a, b):
        for backer in (x, y):
            pledge_held(campaign=campaign, backer=backer, amount=10_000)
    for _ in range(2):
        pledge_held(campaign=c, amount=10_000)
    pay(matching_round)
    assert dict(Allocation.objects.values_list("campaign_id", "amount")) == {a.pk: 2_632, b.pk: 2_631, c.pk: 4_737}


# --- Closing a pool ---------------------------------------------------------------------------


def test_what_is_left_goes_back_to_the_sponsor_when_the_pool_closes(two_campaigns):
    pool, matching_round, a, b = two_campaigns
    pay(matching_round)
    close_and_settle(a)
    close_and_settle(b)  # fails: its 250.00 comes back to the pool
    after_the_end = pool.ends_at + timedelta(seconds=1)

    pool = pool_close(pool=pool, actor=pool.sponsor, now=after_the_end)

    assert (pool.leftover, pool_balance(pool=pool)) == (25_000, 0)
    assert balance(sponsor_funding_code(pool.sponsor_id)) == -100_000 + 25_000
    refund = GatewayOperation.objects.get(kind=OperationKind.REFUND, idempotency_key=f"refund:pool:{pool.pk}")
    assert refund.amount == 25_000
    assert invariant_problems() == []
    # Closing again moves nothing; no round opens on a closed pool.
    before = LedgerTransaction.objects.count()
    pool_close(pool=pool, actor=pool.sponsor, now=after_the_end)
    assert LedgerTransaction.objects.count() == before
    with pytest.raises(Conflict) as refused:
        open_round(pool)
    assert refused.value.code == "pool_closed"


def test_a_pool_does_not_close_early_or_while_its_money_can_still_come_back(two_campaigns):
    pool, matching_round, _a, _b = two_campaigns
    after_the_end = pool.ends_at + timedelta(seconds=1)
    with pytest.raises(Conflict) as early:
        pool_close(pool=pool, actor=pool.sponsor, now=pool.ends_at - timedelta(seconds=1))
    assert early.value.code == "pool_not_over"
    with pytest.raises(Conflict) as running:
        pool_close(pool=pool, actor=pool.sponsor, now=after_the_end)
    assert running.value.code == "round_outstanding"
    pay(matching_round)
    with pytest.raises(Conflict) as outstanding:
        pool_close(pool=pool, actor=pool.sponsor, now=after_the_end)
    assert outstanding.value.code == "match_outstanding"
    pool.refresh_from_db()
    assert pool.closed_at is None
    assert invariant_problems() == []


def test_rounds_whose_time_is_up_are_ended_and_published_by_the_periodic_task(two_campaigns):
    _pool, matching_round, a, _b = two_campaigns
    not_due = open_round(funded_pool(campaigns=[a]), hours=5)
    later = matching_round.ends_at + timedelta(seconds=1)
    assert rounds_end_due(now=matching_round.ends_at - timedelta(seconds=1)) == []
    assert rounds_end_due(now=later) == [matching_round.pk]
    matching_round.refresh_from_db()
    assert matching_round.status == RoundStatus.CHALLENGE
    assert matching_round.challenge_ends_at == later + timedelta(days=3)
    assert Allocation.objects.filter(round=matching_round).count() == 2
    assert Round.objects.get(pk=not_due.pk).status == RoundStatus.OPEN
    assert rounds_end_due(now=later) == []


def test_the_match_of_a_pledge_cancelled_after_payment_goes_back_to_the_pool():
    a = LiveCampaignFactory(goal=5_000, platform_fee_bps=500)
    b = LiveCampaignFactory(goal=100_000)
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    pledges = [pledge_held(campaign=a, amount=2_500) for _ in range(4)]
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    pay(matching_round)
    pledge_cancel(pledge=pledges[0], actor=pledges[0].backer)

    a = close_and_settle(a)

    # Three backers of 25.00 against B's two of 50.00: weights 150.00 : 100.00, so A earns
    # 600.00 of the 750.00 it was paid and 150.00 goes back to the pool.
    allocation = Allocation.objects.get(campaign=a)
    assert (allocation.outcome, allocation.returned_amount) == (AllocationOutcome.RELEASED, 15_000)
    assert pool_balance(pool=pool) == 15_000
    # The fee is on the 75.00 still pledged and the 600.00 matched.
    assert balance(PLATFORM_REVENUE) == 3_375
    assert balance(initiator_payout_code(a.initiator_id)) == 67_500 - 3_375
    assert escrow_balance(a) == 0
    assert invariant_problems() == []


def test_debt_campaigns_are_never_matched():
    loan = LiveCampaignFactory(funding_model=FundingModel.DEBT)
    sponsor = sponsor_create()
    with pytest.raises(InvalidInput) as refused:
        pool_create(**_pool_kwargs(sponsor, campaigns=[loan]))
    assert refused.value.code == "debt_campaign"
    other = LiveCampaignFactory(category=loan.category)
    pool = funded_pool(sponsor=sponsor, categories=[loan.category], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for campaign in (loan, other):
        for _ in range(2):
            pledge_held(campaign=campaign, amount=5_000)
    pay(matching_round)
    assert dict(Allocation.objects.values_list("campaign_id", "amount")) == {other.pk: 100_000}

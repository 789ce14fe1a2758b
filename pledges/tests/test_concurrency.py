"""Pledges under real concurrency: many threads, one PostgreSQL database.

Each thread has its own database connection, as each web process has, and all start together
behind a barrier. SQLite takes one writer at a time, so these races cannot happen there.
"""

import threading
import time
from functools import partial

import pytest
from django.db import connection, transaction

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict
from crowdfund_site.tests.concurrency import WAIT_SECONDS, run_together
from escrow.models import GatewayOperation, OperationKind, OperationStatus
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_create
from projects.models import CampaignStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def _backers(n: int) -> list:
    return UserFactory.create_batch(n, password=None)  # no password hashing: fast


def _pledge(*, backer, campaign, amount: int, key: str | None = None, reward=None):
    return partial(
        pledge_create,
        backer=backer,
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key=key or f"pledge-{backer.pk}",
        reward=reward,
    )


def _charges():
    return GatewayOperation.objects.filter(kind=OperationKind.CHARGE)


def test_fifty_backers_racing_for_five_limited_rewards_get_exactly_five():
    campaign = LiveCampaignFactory(goal=100_000)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500, quantity_limit=5)
    backers = _backers(50)

    outcomes = run_together([_pledge(backer=b, campaign=campaign, amount=2_500, reward=reward) for b in backers])

    held = [o for o in outcomes if isinstance(o, Pledge)]
    refused = [o for o in outcomes if not isinstance(o, Pledge)]
    assert len(held) == 5
    assert all(p.status == PledgeStatus.HELD for p in held)
    assert len(refused) == 45
    assert all(isinstance(e, Conflict) and e.code == "sold_out" for e in refused)
    reward.refresh_from_db()
    assert reward.claimed_count == 5
    assert reward.sold_out
    # Refused backers were never charged and left no pledge behind.
    assert Pledge.objects.count() == 5
    assert _charges().count() == 5
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 5 * 2_500
    assert campaign.backer_count == 5
    assert ledger_verify() == []


def test_the_same_pledge_sent_ten_times_at_once_is_made_and_charged_once():
    campaign = LiveCampaignFactory(goal=100_000)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500, quantity_limit=3)
    (backer,) = _backers(1)
    same = _pledge(backer=backer, campaign=campaign, amount=4_000, key="double-click-123", reward=reward)

    outcomes = run_together([same] * 10)

    assert all(isinstance(o, Pledge) for o in outcomes)
    assert len({o.pk for o in outcomes}) == 1
    pledge = Pledge.objects.get()
    assert pledge.status == PledgeStatus.HELD
    assert _charges().count() == 1
    assert _charges().get().amount == 4_000
    reward.refresh_from_db()
    assert reward.claimed_count == 1
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 4_000
    assert campaign.backer_count == 1
    assert ledger_verify() == []


def _close_when_pledges_are_held(campaign, *, at_least: int) -> list[int]:
    """Wait for some pledges to be held, then close the campaign as beat would at its deadline."""
    give_up = time.monotonic() + WAIT_SECONDS
    while Pledge.objects.filter(campaign=campaign, status=PledgeStatus.HELD).count() < at_least:
        assert time.monotonic() < give_up, "pledges never got held"
        time.sleep(0.005)
    # Closing skips a campaign whose row a pledge holds locked; beat tries again a minute later.
    while not (claimed := campaigns_close_due(now=campaign.deadline, enqueue_settlement=False)):
        assert time.monotonic() < give_up, "the campaign was never closed"
        time.sleep(0.005)
    return claimed


def test_pledges_racing_the_deadline_are_either_settled_or_refunded_at_once():
    campaign = LiveCampaignFactory(goal=10_000_000)  # out of reach: closing refunds everyone
    backers = _backers(30)
    calls = [_pledge(backer=b, campaign=campaign, amount=1_000 + i, key=f"k-{i}") for i, b in enumerate(backers)]
    closer = partial(_close_when_pledges_are_held, campaign, at_least=1)

    *outcomes, claimed = run_together([*calls, closer])

    assert claimed == [campaign.pk]
    accepted = [o for o in outcomes if isinstance(o, Pledge)]
    refused = [o for o in outcomes if not isinstance(o, Pledge)]
    assert len(accepted) >= 1
    assert all(isinstance(e, Conflict) and e.code == "campaign_not_live" for e in refused)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSING
    # What the campaign showed when it closed is exactly what settlement has to give back.
    assert campaign.pledged_amount == sum(p.amount for p in accepted)
    assert set(Pledge.objects.filter(status=PledgeStatus.HELD).values_list("pk", flat=True)) == {p.pk for p in accepted}
    # A payment that completed after closing failed the pledge and went straight back.
    assert not Pledge.objects.exclude(status__in=[PledgeStatus.HELD, PledgeStatus.FAILED]).exists()
    assert ledger_verify() == []

    settlement_run(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    assert Pledge.objects.filter(status=PledgeStatus.REFUNDED).count() == len(accepted)
    # Nobody is out of pocket: every charge made during the race is refunded in full, once.
    for charge in _charges():
        assert charge.refunded_amount == charge.amount
        assert charge.refunds.filter(status=OperationStatus.SUCCEEDED).count() == 1
    assert ledger_verify() == []


def _waiting_on_ledger_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            # The hold's posting, one statement (WITH ... INSERT INTO "escrow_ledgertransaction" ...).
            "AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO \"escrow_ledgertransaction\"%'"
        )
        return cursor.fetchone()[0]


def test_a_payment_completing_after_the_campaign_closed_is_refunded_not_held():
    campaign = LiveCampaignFactory(goal=10_000_000)
    on_time, *late = _backers(5)
    in_time = _pledge(backer=on_time, campaign=campaign, amount=3_000)()
    locked, release = threading.Event(), threading.Event()

    def hold_the_ledger():
        # Stands in for slow payments: cards are charged, but no hold can be written to the
        # ledger until the campaign has closed.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE escrow_ledgertransaction IN EXCLUSIVE MODE")
            locked.set()
            assert release.wait(timeout=WAIT_SECONDS)

    def pledge_once_the_ledger_is_held(backer):
        assert locked.wait(timeout=WAIT_SECONDS)
        return _pledge(backer=backer, campaign=campaign, amount=2_000)()

    pledges_in_flight = [partial(pledge_once_the_ledger_is_held, b) for b in late]

    def close_while_payments_are_in_flight():
        give_up = time.monotonic() + WAIT_SECONDS
        while _waiting_on_ledger_lock() < len(late):
            assert time.monotonic() < give_up, "the payments never reached the ledger"
            time.sleep(0.01)
        try:
            return campaigns_close_due(now=campaign.deadline, enqueue_settlement=False)
        finally:
            release.set()

    _, claimed, *outcomes = run_together([hold_the_ledger, close_while_payments_are_in_flight, *pledges_in_flight])

    assert claimed == [campaign.pk]
    assert all(isinstance(e, Conflict) and e.code == "campaign_not_live" for e in outcomes)
    assert "refunded" in outcomes[0].message
    campaign.refresh_from_db()
    assert campaign.pledged_amount == in_time.amount
    assert campaign.backer_count == 1
    for pledge in Pledge.objects.exclude(pk=in_time.pk):
        assert pledge.status == PledgeStatus.FAILED
        charge = _charges().get(idempotency_key=f"charge:pledge:{pledge.pk}")
        assert charge.refunded_amount == charge.amount == 2_000
    assert ledger_verify() == []

    settlement_run(campaign_id=campaign.pk)

    in_time.refresh_from_db()
    assert in_time.status == PledgeStatus.REFUNDED
    assert all(c.refunded_amount == c.amount for c in _charges())
    assert ledger_verify() == []


def test_twenty_backers_racing_for_the_last_three_slots_of_a_windowed_tier_get_exactly_three():
    from datetime import timedelta

    from django.utils import timezone

    campaign = LiveCampaignFactory(goal=100_000)
    now = timezone.now()
    reward = RewardTierFactory(
        campaign=campaign,
        minimum_amount=2_000,
        quantity_limit=10,
        claimed_count=7,
        available_from=now - timedelta(hours=1),
        available_until=now + timedelta(hours=1),
    )
    outcomes = run_together([_pledge(backer=b, campaign=campaign, amount=2_000, reward=reward) for b in _backers(20)])
    held = [o for o in outcomes if isinstance(o, Pledge)]
    refused = [o for o in outcomes if not isinstance(o, Pledge)]
    assert len(held) == 3
    assert len(refused) == 17
    assert all(isinstance(e, Conflict) and e.code == "sold_out" for e in refused)
    reward.refresh_from_db()
    assert reward.claimed_count == 10
    assert _charges().count() == 3
    assert ledger_verify() == []


def test_twenty_backers_racing_for_the_last_three_slots_of_a_price_step_get_three_at_its_price():
    from projects.pricing import price_now, quote_sign

    campaign = LiveCampaignFactory(goal=1_000_000)
    reward = RewardTierFactory(
        campaign=campaign,
        minimum_amount=2_500,
        claimed_count=97,
        price_steps=[{"price": 2_000, "until_claimed": 100, "until": None}],
    )
    quote = quote_sign(reward, price_now(reward))  # every racer opened the form at 20.00
    racers = [
        partial(_pledge(backer=b, campaign=campaign, amount=2_000, reward=reward), price_quote=quote)
        for b in _backers(20)
    ]
    outcomes = run_together(racers)
    held = [o for o in outcomes if isinstance(o, Pledge)]
    refused = [o for o in outcomes if not isinstance(o, Pledge)]
    assert len(held) == 3
    assert all(p.amount == 2_000 and p.status == PledgeStatus.HELD for p in held)
    assert len(refused) == 17
    assert all(isinstance(e, Conflict) and e.code == "price_changed" and "$25.00" in e.message for e in refused)
    reward.refresh_from_db()
    assert reward.claimed_count == 100
    assert _charges().count() == 3
    # A racer who was refused pledges again at the price offered and gets a slot.
    late = pledge_create(
        backer=refused_backer(outcomes, racers),
        campaign=campaign,
        amount=2_500,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key="again",
        reward=reward,
    )
    assert late.status == PledgeStatus.HELD
    assert ledger_verify() == []


def refused_backer(outcomes, racers):
    index = next(i for i, o in enumerate(outcomes) if not isinstance(o, Pledge))
    return racers[index].keywords["backer"]


def test_backers_racing_a_next_price_step_get_the_old_price_only_for_the_old_slots():
    from projects.services import reward_price_step_open

    campaign = LiveCampaignFactory(goal=1_000_000)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_000, quantity_limit=10, claimed_count=7)
    # Every racer loaded the tier at 20.00 with 10 slots, as a pledge request does before it claims.
    racers = [_pledge(backer=b, campaign=campaign, amount=2_000, reward=reward) for b in _backers(19)]
    racers.append(partial(reward_price_step_open, reward=reward, actor=campaign.initiator, price=2_500, slots=5))
    outcomes = run_together(racers)
    assert outcomes[-1].quantity_limit == 15  # the step opened
    held = [o for o in outcomes[:-1] if isinstance(o, Pledge)]
    refused = [o for o in outcomes[:-1] if not isinstance(o, Pledge)]
    assert len(held) == 3  # the old price's last three slots, never one of the new ones
    assert all(p.amount == 2_000 for p in held)
    assert all(isinstance(e, Conflict) and e.code in {"sold_out", "price_changed"} for e in refused)
    reward.refresh_from_db()
    assert (reward.claimed_count, reward.quantity_limit, reward.minimum_amount) == (10, 15, 2_500)
    late = pledge_create(
        backer=refused_backer(outcomes, racers),
        campaign=campaign,
        amount=2_500,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key="again",
        reward=reward,
    )
    assert late.status == PledgeStatus.HELD
    assert ledger_verify() == []

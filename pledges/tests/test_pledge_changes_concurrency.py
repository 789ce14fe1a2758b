"""One pledge per backer per campaign, and changes of it, under real concurrency on PostgreSQL."""

from functools import partial

import pytest
from django.db import connection

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client
from crowdfund_site.exceptions import Conflict
from crowdfund_site.tests.concurrency import run_together
from escrow.models import GatewayOperation, OperationKind
from pledges.changes import pledge_change
from pledges.models import Pledge, PledgeChange, PledgeStatus
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.tests.checks import invariant_problems, net_charged

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def test_twenty_parallel_back_requests_by_one_backer_make_one_pledge():
    campaign = LiveCampaignFactory()
    backer = UserFactory(password=None)

    def back(n: int):
        body = {"amount": 1_000 + n, "currency": campaign.currency, "payment_token": "tok_visa"}
        return api_client(backer).post(
            f"/api/v1/campaigns/{campaign.pk}/pledges/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"back-{n}"
        )

    responses = run_together([partial(back, n) for n in range(20)])

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, [r.content[:200] for r in responses if r.status_code not in (201, 409)]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"already_backing"}
    assert Pledge.objects.filter(backer=backer).count() == 1
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1  # nobody else was charged
    campaign.refresh_from_db()
    assert campaign.backer_count == 1
    assert invariant_problems() == []


def test_two_backers_changing_into_the_last_slot_get_it_once():
    campaign = LiveCampaignFactory()
    mug = RewardTierFactory(campaign=campaign, minimum_amount=3_000, quantity_limit=1)
    pledges = [pledge_held(campaign=campaign, amount=1_000) for _ in range(6)]

    calls = [
        partial(
            pledge_change,
            pledge=p,
            actor=p.backer,
            amount=3_000,
            reward=mug,
            payment_token="tok_visa",
            idempotency_key=f"mug-{p.pk}",
        )
        for p in pledges
    ]
    outcomes = run_together(calls)

    won = [o for o in outcomes if isinstance(o, Pledge)]
    assert len(won) == 1
    assert all(isinstance(o, Conflict) and o.code == "sold_out" for o in outcomes if o not in won)
    mug.refresh_from_db()
    assert mug.claimed_count == 1
    assert sorted(Pledge.objects.values_list("amount", flat=True)) == [1_000] * 5 + [3_000]
    assert invariant_problems() == []


def test_parallel_changes_of_one_pledge_never_move_money_twice():
    campaign = LiveCampaignFactory()
    pledge = pledge_held(campaign=campaign, amount=2_000)
    calls = [
        partial(
            pledge_change,
            pledge=pledge,
            actor=pledge.backer,
            amount=amount,
            payment_token="tok_visa",
            idempotency_key=f"c-{n}",
        )
        for n, amount in enumerate([500, 1_500, 3_000, 4_000, 7_000, 2_500, 900, 6_000])
    ]
    run_together(calls)

    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.HELD
    made = list(PledgeChange.objects.filter(status="done").order_by("id"))
    assert made, "at least one change goes through"
    # Each change started from where the previous one left the pledge: a chain, no lost update.
    assert [c.from_amount for c in made] == [2_000] + [c.to_amount for c in made[:-1]]
    assert pledge.amount == made[-1].to_amount
    assert net_charged(pledge) == pledge.amount
    assert invariant_problems() == []

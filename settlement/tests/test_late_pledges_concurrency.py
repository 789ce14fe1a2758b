"""Late pledges under real concurrency on PostgreSQL: threads with their own connections, started together."""

from functools import partial

import pytest
from django.db import connection

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict
from crowdfund_site.tests.concurrency import run_together
from escrow.models import GatewayOperation, OperationKind
from pledges.late_pledges import late_offer_close, late_pledge_create
from pledges.models import Pledge, PledgeStatus
from settlement.verification import ledger_verify

from .late_helpers import LATE_PRICE, succeeded_with_late_offer

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def _late(*, backer, campaign, reward, key=None):
    return partial(
        late_pledge_create,
        backer=backer,
        campaign=campaign,
        reward=reward,
        amount=LATE_PRICE,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key=key or f"late-{backer.pk}",
    )


def test_thirty_late_backers_racing_for_four_limited_rewards_get_exactly_four():
    campaign, reward = succeeded_with_late_offer(quantity_limit=4)
    backers = UserFactory.create_batch(30, password=None)

    outcomes = run_together([_late(backer=b, campaign=campaign, reward=reward) for b in backers])

    held = [o for o in outcomes if isinstance(o, Pledge)]
    refused = [o for o in outcomes if not isinstance(o, Pledge)]
    assert len(held) == 4
    assert all(p.status == PledgeStatus.HELD for p in held)
    assert all(isinstance(e, Conflict) and e.code == "sold_out" for e in refused), refused
    reward.refresh_from_db()
    assert reward.claimed_count == 4
    assert Pledge.objects.filter(is_late=True).count() == 4
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE, amount=LATE_PRICE).count() == 4
    assert ledger_verify() == []


def test_one_backer_sending_two_late_pledges_at_once_gets_one():
    campaign, reward = succeeded_with_late_offer()
    backer = UserFactory(password=None)

    outcomes = run_together([_late(backer=backer, campaign=campaign, reward=reward, key=f"late-{n}") for n in range(2)])

    held = [o for o in outcomes if isinstance(o, Pledge)]
    assert len(held) == 1, outcomes
    assert Pledge.objects.filter(is_late=True, status=PledgeStatus.HELD).count() == 1
    reward.refresh_from_db()
    assert reward.claimed_count == 1
    assert ledger_verify() == []


def test_closing_while_backers_pledge_leaves_no_pledge_held_after_it():
    campaign, reward = succeeded_with_late_offer()
    backers = UserFactory.create_batch(10, password=None)

    run_together(
        [
            *[_late(backer=b, campaign=campaign, reward=reward) for b in backers],
            partial(late_offer_close, campaign=campaign, actor=campaign.initiator),
        ]
    )

    assert ledger_verify() == []  # no late pledge held after the offer closed; refused charges refunded
    for charge in GatewayOperation.objects.filter(kind=OperationKind.CHARGE, amount=LATE_PRICE):
        pledge = Pledge.objects.get(pk=int(charge.idempotency_key.rsplit(":", 1)[1]))
        assert (pledge.status == PledgeStatus.HELD) == (charge.refunded_amount == 0)

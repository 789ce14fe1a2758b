"""Add-on limits under real concurrency: many threads, one PostgreSQL database, never an oversold add-on."""

from functools import partial

import pytest
from django.db import connection

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict
from crowdfund_site.tests.concurrency import run_together
from pledges.changes import pledge_change
from pledges.models import Pledge, PledgeAddOn, PledgeStatus
from pledges.services import pledge_create
from projects.addons import addon_create
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.checks import invariant_problems, net_charged

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def _pledge(*, backer, campaign, addons):
    return partial(
        pledge_create,
        backer=backer,
        campaign=campaign,
        amount=1_000,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key=f"pledge-{backer.pk}",
        addons=addons,
    )


def test_twenty_backers_racing_for_seven_units_two_at_a_time_get_three_pledges_and_six_units():
    campaign = LiveCampaignFactory(goal=100_000)
    poster = addon_create(campaign=campaign, actor=campaign.initiator, title="Poster", price=1_500, quantity_limit=7)
    backers = UserFactory.create_batch(20, password=None)

    outcomes = run_together([_pledge(backer=b, campaign=campaign, addons={poster.pk: 2}) for b in backers])

    held = [o for o in outcomes if isinstance(o, Pledge)]
    refused = [o for o in outcomes if not isinstance(o, Pledge)]
    assert len(held) == 3
    assert all(p.status == PledgeStatus.HELD and p.amount == 4_000 for p in held)
    assert all(isinstance(e, Conflict) and e.code == "addon_sold_out" for e in refused)
    poster.refresh_from_db()
    assert poster.claimed_count == 6
    # Refused backers were never charged and left nothing behind.
    assert Pledge.objects.count() == 3
    assert PledgeAddOn.objects.count() == 3
    assert invariant_problems() == []


def test_new_pledges_and_changes_racing_for_the_last_units_never_oversell():
    campaign = LiveCampaignFactory(goal=100_000)
    poster = addon_create(campaign=campaign, actor=campaign.initiator, title="Poster", price=1_500, quantity_limit=8)
    owners = UserFactory.create_batch(4, password=None)
    existing = [pledge_create(**_pledge(backer=b, campaign=campaign, addons={poster.pk: 1}).keywords) for b in owners]
    newcomers = UserFactory.create_batch(10, password=None)
    calls = [
        partial(
            pledge_change,
            pledge=p,
            actor=p.backer,
            addons={poster.pk: 3},
            payment_token="tok_visa",
            idempotency_key=f"more-{p.pk}",
        )
        for p in existing
    ] + [_pledge(backer=b, campaign=campaign, addons={poster.pk: 1}) for b in newcomers]

    run_together(calls)

    poster.refresh_from_db()
    carried = sum(
        PledgeAddOn.objects.filter(pledge__status=PledgeStatus.HELD, addon=poster).values_list("quantity", flat=True)
    )
    assert poster.claimed_count == carried
    assert carried == poster.quantity_limit  # every unit taken, none twice
    for held in Pledge.objects.filter(status=PledgeStatus.HELD):
        assert net_charged(held) == held.amount
    assert invariant_problems() == []

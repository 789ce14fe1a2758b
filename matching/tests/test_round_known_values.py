"""Known values through a real round: a GlobalGiving bonus day, and the initiator's own money left out.

The allocation math has its own known-value tests (``test_allocation.py``); these run the same
examples through a pool, a round, its contributions and ``round_end``, as staff and sponsors see
them in the frozen allocation.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from matching.models import Allocation, PoolMode
from matching.services import round_create, round_end
from matching.tests.factories import funded_pool
from projects.tests.factories import LiveCampaignFactory
from risk.tests.factories import pledge_history

pytestmark = pytest.mark.django_db


def _allocations(matching_round):
    return {
        row.campaign_id: (row.amount, row.contributions, row.backers, row.raised)
        for row in Allocation.objects.filter(round=matching_round)
    }


def _end(matching_round):
    round_end(matching_round=matching_round, now=matching_round.ends_at + timedelta(seconds=1))


def test_a_globalgiving_bonus_day_through_a_round():
    """The bonus day of ``test_allocation.test_pro_rata_globalgiving_day``, as a one-day pro-rata round.

    1,000.00 shared pro rata, 400.00 at most per campaign, over what A (4 x 300.00), B (500.00),
    C (250.00) and D (33.33) raised that day: A 400.00, B 382.98, C 191.49, D 25.53. What they
    raised the day before, and B's initiator's own 900.00, do not count.
    """
    a, b, c, d = (LiveCampaignFactory() for _ in range(4))
    pool = funded_pool(amount=100_000, mode=PoolMode.PRO_RATA, campaigns=[a, b, c, d], per_campaign_cap=40_000)
    now = timezone.now()
    day = round_create(
        pool=pool, actor=pool.sponsor, starts_at=now - timedelta(hours=23), ends_at=now + timedelta(hours=1)
    )
    during = now - timedelta(hours=2)
    pledge_history(a, times=[during] * 4, amounts=[30_000] * 4)
    pledge_history(b, times=[during], amounts=[50_000])
    pledge_history(c, times=[during], amounts=[25_000])
    pledge_history(d, times=[during], amounts=[3_333])
    # The day before the bonus day: a large gift to D, outside the round.
    pledge_history(d, times=[day.starts_at - timedelta(minutes=10)], amounts=[500_000])
    # B's initiator backing their own campaign (a record from before pledge_create refused it).
    pledge_history(b, times=[during], amounts=[90_000], backers=[b.initiator])

    _end(day)

    assert _allocations(day) == {
        a.pk: (40_000, 4, 4, 120_000),
        b.pk: (38_298, 1, 1, 50_000),
        c.pk: (19_149, 1, 1, 25_000),
        d.pk: (2_553, 1, 1, 3_333),
    }
    day.refresh_from_db()
    assert day.budget == 100_000


@pytest.mark.parametrize("mode", [PoolMode.QUADRATIC, PoolMode.PRO_RATA])
def test_the_initiators_own_pledges_do_not_count(mode):
    """Two campaigns with the same two backers' 25.00 each share the pool evenly, whatever A's initiator gives A.

    The project has no team or collaborator model: a campaign has one initiator, and theirs are
    the contributions left out (``matching.selectors._initiators``).
    """
    a, b = LiveCampaignFactory(), LiveCampaignFactory()
    pool = funded_pool(amount=100_000, mode=mode, campaigns=[a, b], per_campaign_cap=100_000)
    now = timezone.now()
    matching_round = round_create(
        pool=pool, actor=pool.sponsor, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)
    )
    during = now - timedelta(minutes=30)
    for campaign in (a, b):
        pledge_history(campaign, times=[during, during], amounts=[2_500, 2_500])
    pledge_history(a, times=[during], amounts=[500_000], backers=[a.initiator])

    _end(matching_round)

    assert _allocations(matching_round) == {a.pk: (50_000, 2, 2, 5_000), b.pk: (50_000, 2, 2, 5_000)}

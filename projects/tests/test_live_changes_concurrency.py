"""The deadline extended once and a price lowered only for a tier nobody holds, under real concurrency on PostgreSQL."""

from datetime import timedelta
from functools import partial

import pytest
from django.db import connection
from django.utils import timezone

from crowdfund_site.exceptions import Conflict
from crowdfund_site.tests.concurrency import run_together
from pledges.models import Pledge
from pledges.tests.factories import pledge_held
from projects.live_changes import campaign_deadline_extend, reward_price_lower
from projects.models import CampaignDeadlineExtension
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def test_eight_extensions_at_once_move_the_deadline_once():
    now = timezone.now()
    campaign = LiveCampaignFactory(launched_at=now - timedelta(days=10), deadline=now + timedelta(days=20))
    old = campaign.deadline
    outcomes = run_together(
        [partial(campaign_deadline_extend, campaign=campaign, actor=campaign.initiator, days=d) for d in range(1, 9)]
    )
    won = [o for o in outcomes if isinstance(o, CampaignDeadlineExtension)]
    assert len(won) == 1
    assert all(isinstance(o, Conflict) and o.code == "already_extended" for o in outcomes if o not in won)
    campaign.refresh_from_db()
    assert campaign.deadline == won[0].to_deadline > old


def test_a_price_lowered_while_backers_pledge_for_the_tier_neither_deadlocks_nor_refuses_a_pledge():
    campaign = LiveCampaignFactory()
    patron = RewardTierFactory(campaign=campaign, minimum_amount=10_000)
    calls = [partial(pledge_held, campaign=campaign, amount=10_000, reward=patron) for _ in range(3)]
    calls.append(partial(reward_price_lower, reward=patron, actor=campaign.initiator, price=8_000))
    *pledges, lowered = run_together(calls)
    assert all(isinstance(p, Pledge) for p in pledges)  # every backer got the tier, at the 100.00 they offered
    assert sorted(Pledge.objects.filter(reward=patron).values_list("amount", flat=True)) == [10_000] * 3
    patron.refresh_from_db()
    assert patron.claimed_count == 3
    # Either it went first (nobody held the tier yet) or it found a holder and changed nothing.
    if isinstance(lowered, Conflict):
        assert (lowered.code, patron.minimum_amount) == ("reward_has_backers", 10_000)
    else:
        assert patron.minimum_amount == 8_000

"""Recommendations: the backer's categories first, with the reason; a sensible cold start."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.utils import timezone

from accounts.tests.factories import UserFactory
from projects.tests.factories import CategoryFactory, LiveCampaignFactory
from risk.selectors import (
    backer_profile_for,
    live_campaign_pool,
    live_campaign_pool_cached,
    recommendations_for,
    recommendations_rank,
)
from risk.services import risk_assess_campaigns

from .factories import pledge_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    """Live campaigns in three categories; the Art one is popular, nearly funded and ends tomorrow."""
    games, art, tech = CategoryFactory(name="Games"), CategoryFactory(name="Art"), CategoryFactory(name="Tech")
    now = timezone.now()
    return {
        "games": LiveCampaignFactory(category=games, title="Quiet game"),
        "art": LiveCampaignFactory(
            category=art,
            title="Popular art",
            backer_count=500,
            pledged_amount=90_000,
            deadline=now + timedelta(days=1),
        ),
        "tech": LiveCampaignFactory(category=tech, title="Gadget", backer_count=40, pledged_amount=20_000),
        "categories": (games, art, tech),
    }


def test_a_backer_of_games_gets_the_games_campaign_first_with_the_reason(catalogue):
    backer = UserFactory()
    games = catalogue["categories"][0]
    backed = [LiveCampaignFactory(category=games) for _ in range(3)]
    for campaign in backed:
        pledge_history(campaign, times=[timezone.now()], amounts=[2_500], backers=[backer])

    recommendations = recommendations_for(backer, limit=5)

    assert recommendations[0].campaign == catalogue["games"]
    assert recommendations[0].reason == "because you backed 3 Games campaigns"
    assert not {c.pk for c in backed} & {r.campaign_id for r in recommendations}
    assert [r.score for r in recommendations] == sorted((r.score for r in recommendations), reverse=True)


def test_declared_interests_count_before_any_pledge(catalogue):
    art = catalogue["categories"][1]
    tech = catalogue["categories"][2]

    recommendations = recommendations_for(UserFactory(), interests=[tech, art.pk])

    assert {r.campaign for r in recommendations[:2]} == {catalogue["tech"], catalogue["art"]}
    assert recommendations[0].reason.startswith("because you are interested in")


def test_a_cold_start_recommends_popular_campaigns_and_those_ending_soon(catalogue):
    recommendations = recommendations_for(AnonymousUser(), limit=3)

    assert recommendations[0].campaign == catalogue["art"]
    assert recommendations[0].reason in {
        "popular: 500 backers",
        "ending in 23 hours, 90% funded",
        "90% funded and close to its goal",
    }
    assert len(recommendations) == 3


def test_initiators_are_not_recommended_their_own_campaigns(catalogue):
    initiator = catalogue["art"].initiator

    recommendations = recommendations_for(initiator)

    assert catalogue["art"].pk not in {r.campaign_id for r in recommendations}


def test_a_risk_averse_backer_sees_the_safer_of_two_similar_campaigns_first():
    games = CategoryFactory(name="Games")
    safe = LiveCampaignFactory(category=games, description="A careful plan. " * 200)
    risky = LiveCampaignFactory(category=games, goal=10_000_000, description="Trust me.")
    risk_assess_campaigns(campaign_ids=[safe.pk, risky.pk])
    pool = live_campaign_pool()

    cautious = recommendations_for(UserFactory(), interests=[games], risk_tolerance=0.0, pool=pool)

    assert [r.campaign for r in cautious] == [safe, risky]


def test_a_reused_pool_drops_campaigns_that_ended_since_it_was_loaded(catalogue):
    cache.clear()
    pool = live_campaign_pool_cached()
    LiveCampaignFactory()  # not in the cached pool until it is reloaded

    two_days_later = recommendations_rank(backer_profile_for(None), pool, now=timezone.now() + timedelta(days=2))

    assert len(live_campaign_pool_cached()) == len(pool) == 3
    assert {r.campaign_id for r in two_days_later} == {catalogue["games"].pk, catalogue["tech"].pk}
    cache.clear()

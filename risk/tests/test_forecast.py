"""Funding forecasts for campaigns: fitted to their own pledges, or from similar campaigns."""

from datetime import timedelta
from datetime import timezone as dt_timezone

import numpy as np
import pytest
from django.utils import timezone

from pledges.models import Pledge, PledgeStatus
from projects.tests.factories import CategoryFactory, LiveCampaignFactory
from risk.selectors import forecast_for_campaign
from risk.selectors.forecasts import _cumulative_pledged

from .factories import closed_campaign_create, pledge_history

pytestmark = pytest.mark.django_db


def _campaign_following_the_curve(*, amplitude, rate, days_in, goal):
    now = timezone.now()
    campaign = LiveCampaignFactory(
        goal=goal, launched_at=now - timedelta(days=days_in), deadline=now + timedelta(days=30 - days_in)
    )
    t = np.arange(1, 101) * days_in / 100
    cumulative = np.round(amplitude * (1 - np.exp(-rate * t))).astype(int)
    amounts = np.diff(cumulative, prepend=0)
    pledge_history(
        campaign,
        times=[campaign.launched_at + timedelta(days=float(d)) for d in t],
        amounts=[int(a) for a in amounts],
    )
    return campaign


def test_a_campaign_with_enough_pledges_is_forecast_from_its_own_curve():
    campaign = _campaign_following_the_curve(amplitude=200_000, rate=0.2, days_in=10, goal=150_000)

    forecast = forecast_for_campaign(campaign)

    assert forecast.method == "curve"
    assert forecast.amplitude == pytest.approx(200_000, rel=0.05)
    assert forecast.rate_per_day == pytest.approx(0.2, rel=0.05)
    assert forecast.predicted_total == pytest.approx(200_000 * (1 - np.exp(-6)), rel=0.05)
    assert forecast.low <= forecast.predicted_total <= forecast.high
    assert forecast.probability_of_goal > 0.95
    assert forecast.pledged <= forecast.cone[0].median <= forecast.cone[-1].median
    assert "A(1 - e^(-kt))" in forecast.explanation


def test_a_goal_far_above_the_curve_is_unlikely_to_be_reached():
    campaign = _campaign_following_the_curve(amplitude=200_000, rate=0.2, days_in=10, goal=400_000)

    assert forecast_for_campaign(campaign).probability_of_goal < 0.05


def test_the_forecast_is_the_same_each_time_it_is_asked_for():
    campaign = _campaign_following_the_curve(amplitude=90_000, rate=0.1, days_in=8, goal=100_000)
    now = timezone.now()

    assert forecast_for_campaign(campaign, now=now) == forecast_for_campaign(campaign, now=now)


def test_a_new_campaign_is_forecast_from_similar_closed_campaigns():
    games = CategoryFactory(name="Games")
    for ratio in (1.5, 1.8, 2.0, 2.2, 2.5, 1.7):
        closed_campaign_create(failed=False, category=games, goal=100_000, pledged_amount=int(ratio * 100_000))
    campaign = LiveCampaignFactory(category=games, goal=100_000)

    forecast = forecast_for_campaign(campaign)

    assert forecast.method == "prior"
    assert "6 closed campaigns in its category" in forecast.explanation
    assert forecast.probability_of_goal > 0.95
    assert 150_000 <= forecast.predicted_total <= 250_000


def test_without_any_history_the_documented_default_prior_is_used():
    campaign = LiveCampaignFactory(goal=100_000, currency="EUR")

    forecast = forecast_for_campaign(campaign)

    assert forecast.method == "prior"
    assert "default" in forecast.explanation
    assert 0 < forecast.probability_of_goal < 0.5
    assert forecast.low < forecast.predicted_total < forecast.high


def test_an_ended_campaign_is_forecast_as_what_it_raised():
    now = timezone.now()
    campaign = LiveCampaignFactory(goal=100_000, launched_at=now - timedelta(days=31), deadline=now - timedelta(days=1))
    pledge_history(campaign, times=[now - timedelta(days=10)], amounts=[120_000])

    forecast = forecast_for_campaign(campaign)

    assert (forecast.method, forecast.predicted_total, forecast.probability_of_goal) == ("closed", 120_000, 1.0)


def test_the_pledged_series_counts_each_held_pledge_once_by_the_time_it_was_held():
    now = timezone.now()
    start = now - timedelta(days=4)
    campaign = LiveCampaignFactory(launched_at=start, deadline=now + timedelta(days=26))
    held = pledge_history(
        campaign,
        times=[start + timedelta(hours=h) for h in (1, 23, 30, 95)] + [now + timedelta(hours=1)],
        amounts=[100, 200, 400, 800, 1_600],
    )
    Pledge.objects.filter(pk=held[2].pk).update(status=PledgeStatus.CANCELLED)

    count, cumulative = _cumulative_pledged(campaign_id=campaign.pk, start=start, end=now, points=4)

    # One point a day: the cancelled pledge and the one held after ``end`` count nowhere.
    assert count == 3
    assert cumulative.tolist() == [300, 300, 300, 1_100]


def test_a_pledge_held_an_hour_ago_counts_whatever_time_zone_now_is_given_in():
    pacific = dt_timezone(timedelta(hours=-8))
    now = timezone.now().astimezone(pacific)
    start = now - timedelta(days=2)
    campaign = LiveCampaignFactory(launched_at=start, deadline=now + timedelta(days=28))
    pledge_history(campaign, times=[now - timedelta(hours=1)], amounts=[2_500])

    count, cumulative = _cumulative_pledged(campaign_id=campaign.pk, start=start, end=now, points=4)

    assert (count, int(cumulative[-1])) == (1, 2_500)
    assert forecast_for_campaign(campaign, now=now).pledged == 2_500

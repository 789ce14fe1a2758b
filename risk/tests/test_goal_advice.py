"""Pricing advice rules 2 and 3 and the goal's chance with and without a suggestion, pinned on known forecasts.

Rule 2: under 30 % chance at a third of the time -> a lower-priced tier, or the deadline extended
once. Rule 3: a tier nobody takes after a quarter of the time while others sell -> a lower price
for new backers. No database: the rules read only what they are given.
"""

import math
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import pytest

from projects.models import RewardTier
from risk.algorithms import goal_chance
from risk.selectors import (
    ADD_LOWER_TIER,
    EXTEND_DEADLINE,
    LOWER_PRICE,
    ConePoint,
    Forecast,
    extended_forecast,
    goal_advice,
    price_rounded_down,
    price_step_advice,
    untaken_tier_advice,
)

LAUNCH = datetime(2027, 3, 1, tzinfo=UTC)
DEADLINE = LAUNCH + timedelta(days=30)
BAND = (0.05, 0.95)


# --- The chance of the goal: a split lognormal read from the forecast's median and band -----------


@pytest.mark.parametrize(
    ("goal", "expected"),
    [
        (100_000, 0.5),  # the median
        (200_000, 0.05),  # the band's top: 5 % above it
        (50_000, 0.95),  # the band's bottom: 95 % above it
        (40_000, 1.0),  # at or below what is pledged: certain
    ],
)
def test_the_chance_puts_the_band_at_its_quantiles(goal, expected):
    chance = goal_chance(goal=goal, median=100_000, low=50_000, high=200_000, floor=40_000, band=BAND)
    assert chance == pytest.approx(expected, abs=1e-9)


def test_the_chance_reads_each_side_of_the_median_with_its_own_spread():
    # Band 90k..300k around 100k: a narrow downside, a wide upside.
    above = goal_chance(goal=150_000, median=100_000, low=90_000, high=300_000, floor=0, band=BAND)
    spread_up = math.log(3) / NormalDist().inv_cdf(0.95)
    assert above == pytest.approx(1 - NormalDist().cdf(math.log(1.5) / spread_up))
    below = goal_chance(goal=95_000, median=100_000, low=90_000, high=300_000, floor=0, band=BAND)
    spread_down = math.log(100 / 90) / NormalDist().inv_cdf(0.95)
    assert below == pytest.approx(1 - NormalDist().cdf(math.log(0.95) / spread_down))
    # A band of no width above the median: the total is the median, a goal above it is missed.
    assert goal_chance(goal=100_001, median=100_000, low=90_000, high=100_000, floor=0, band=BAND) == 0.0


def test_more_money_in_the_forecast_never_lowers_the_chance():
    chances = [
        goal_chance(goal=500_000, median=m, low=m * 0.7, high=m * 1.6, floor=100_000, band=BAND)
        for m in range(150_000, 900_000, 50_000)
    ]
    assert chances == sorted(chances)
    assert chances[0] < 0.01 < 0.99 < chances[-1]


# --- Rule 2: a goal out of reach at a third of the time ------------------------------------------------


def _forecast(**fields) -> Forecast:
    """$1,000.00 pledged, $2,000.00 forecast (likely $1,500.00 to $4,500.00) for a $5,000.00 goal."""
    values = {
        "campaign_id": 1,
        "currency": "USD",
        "goal": 500_000,
        "pledged": 100_000,
        "method": "prior",
        "predicted_total": 200_000,
        "low": 150_000,
        "high": 450_000,
        "probability_of_goal": 0.03,
        "amplitude": None,
        "rate_per_day": None,
        "cone": (ConePoint(at=DEADLINE, low=150_000, median=200_000, high=450_000),),
        "explanation": "",
    }
    return Forecast(**{**values, **fields})


def _tier(pk: int, *, claimed: int, price: int, **extra) -> RewardTier:
    return RewardTier(
        pk=pk,
        title=f"Tier {pk}",
        minimum_amount=price,
        quantity_limit=extra.pop("limit", None),
        claimed_count=claimed,
        price_steps=extra.pop("price_steps", []),
        **extra,
    )


# 24 claims in 12 days (2 a day) and 12 (1 a day): the slowest sells 1 a day.
SELLING = [_tier(1, claimed=24, price=2_500), _tier(2, claimed=12, price=5_000)]
DAY_12 = LAUNCH + timedelta(days=12)


def _goal_advice(forecast=None, *, now=DAY_12, rewards=SELLING, days_left=30):
    found = goal_advice(
        forecast=forecast or _forecast(),
        rewards=rewards,
        launched_at=LAUNCH,
        deadline=DEADLINE,
        now=now,
        extension_days_left=days_left,
    )
    return {item.kind: item for item in found}


def test_rule_2_on_a_known_forecast_offers_a_cheaper_tier_and_a_later_deadline():
    advice = _goal_advice()
    assert set(advice) == {ADD_LOWER_TIER, EXTEND_DEADLINE}
    without = goal_chance(goal=500_000, median=200_000, low=150_000, high=450_000, floor=100_000, band=BAND)
    assert without == pytest.approx(0.0315, abs=5e-4)  # under 30 %

    tier = advice[ADD_LOWER_TIER]
    assert (tier.price, tier.cheapest_price) == (1_200, 2_500)  # half the cheapest, rounded down to a dollar
    assert tier.expected_backers == 18  # 1 a day for the 18 days left
    assert (tier.total_without, tier.total_with) == (200_000, 200_000 + 18 * 1_200)
    assert tier.chance_without == pytest.approx(without)
    shifted = goal_chance(goal=500_000, median=221_600, low=171_600, high=471_600, floor=100_000, band=BAND)
    assert tier.chance_with == pytest.approx(shifted)
    assert tier.chance_with > tier.chance_without
    assert "a 3% chance" in tier.explanation
    assert "Add a tier at $12.00, below your cheapest ($25.00)" in tier.explanation
    assert "“Tier 2” (1.0 a day), that is about 18 more backers" in tier.explanation

    extension = advice[EXTEND_DEADLINE]
    assert (extension.days, extension.most_days) == (14, 30)
    assert extension.new_deadline == DEADLINE + timedelta(days=14)
    # From similar campaigns, the $1,000.00 still to come arrives evenly over the 18 days left.
    assert extension.total_with == round(200_000 + 100_000 * 14 / 18)
    assert extension.chance_with > extension.chance_without == pytest.approx(without)
    assert "Extend the deadline by 14 days, to 14 April 2027" in extension.explanation
    assert "a campaign runs at most 60 days" in extension.explanation


def test_rule_2_carries_a_fitted_curve_on_over_the_added_days():
    forecast = _forecast(method="curve", amplitude=250_000.0, rate_per_day=0.05)
    median, low, high = extended_forecast(forecast, launched_at=LAUNCH, deadline=DEADLINE, now=DAY_12, days=14)
    extra = 250_000 * (math.exp(-0.05 * 30) - math.exp(-0.05 * 44))
    assert median == pytest.approx(200_000 + extra)
    ratio = (100_000 + extra) / 100_000  # the band's distance from what is pledged grows alike
    assert (low, high) == (pytest.approx(100_000 + 50_000 * ratio), pytest.approx(100_000 + 350_000 * ratio))
    assert _goal_advice(forecast)[EXTEND_DEADLINE].total_with == round(200_000 + extra)


def test_rule_2_waits_for_a_third_of_the_time_and_a_chance_under_30_percent():
    assert _goal_advice(now=LAUNCH + timedelta(days=9)) == {}  # under a third in
    likely = _forecast(predicted_total=450_000, low=300_000, high=700_000)
    assert _goal_advice(likely) == {}  # about 35 %
    assert _goal_advice(_forecast(method="closed")) == {}
    assert _goal_advice(now=DEADLINE) == {}


def test_rule_2_offers_no_extension_once_extended_and_no_tier_without_a_pace_or_a_cheaper_price():
    assert set(_goal_advice(days_left=0)) == {ADD_LOWER_TIER}  # extended once, or at 60 days
    assert set(_goal_advice(rewards=[_tier(1, claimed=0, price=2_500)])) == {EXTEND_DEADLINE}  # nothing sells
    assert set(_goal_advice(rewards=[_tier(1, claimed=24, price=100)])) == {EXTEND_DEADLINE}  # $1.00 already
    assert set(_goal_advice(rewards=[])) == {EXTEND_DEADLINE}


def test_a_stepped_tier_counts_at_its_price_now():
    stepped = _tier(
        3, claimed=30, price=4_000, limit=100, price_steps=[{"price": 2_000, "until_claimed": 50, "until": None}]
    )
    advice = _goal_advice(rewards=[*SELLING, stepped])
    assert (advice[ADD_LOWER_TIER].cheapest_price, advice[ADD_LOWER_TIER].price) == (2_000, 1_000)


# --- Rule 3: a tier nobody takes ------------------------------------------------------------------------

DAY_8 = LAUNCH + timedelta(days=8)


def _untaken(rewards, *, now=DAY_8, forecast=None):
    found = untaken_tier_advice(
        forecast=forecast or _forecast(), rewards=rewards, launched_at=LAUNCH, deadline=DEADLINE, now=now
    )
    return {item.reward_id: item for item in found}


def test_rule_3_on_a_known_forecast_lowers_an_untaken_tier_for_new_backers():
    rewards = [
        _tier(1, claimed=16, price=2_500),  # 2 a day
        _tier(2, claimed=8, price=5_000),  # 1 a day: the slowest that sells
        _tier(3, claimed=0, price=10_000),  # nobody, after 8 of 30 days
        _tier(4, claimed=0, price=9_999, price_steps=[{"price": 8_000, "until_claimed": 10, "until": None}]),
        _tier(5, claimed=0, price=12_000, available_until=DAY_8),  # its window has closed
        _tier(6, claimed=0, price=12_000, available_from=DAY_8 + timedelta(days=1)),  # not open yet
    ]
    advice = _untaken(rewards)
    assert set(advice) == {3}
    item = advice[3]
    assert item.kind == LOWER_PRICE
    assert (item.current_price, item.price) == (10_000, 8_000)  # 80 %, rounded down to a whole dollar
    assert item.expected_backers == 22  # 1 a day for the 22 days left
    assert (item.total_without, item.total_with) == (200_000, 200_000 + 22 * 8_000)
    assert item.chance_with > item.chance_without
    assert "Nobody has chosen “Tier 3” at $100.00 in 8 days" in item.explanation
    assert "Lower it to $80.00 for new backers" in item.explanation
    assert "no backer's price changes" in item.explanation


def test_rule_3_waits_for_a_quarter_of_the_time_and_for_other_tiers_to_sell():
    rewards = [_tier(1, claimed=2, price=2_500), _tier(3, claimed=0, price=10_000)]
    assert _untaken(rewards) == {}  # 2 claims elsewhere: too few to say the tier is the problem
    selling = [_tier(1, claimed=3, price=2_500), _tier(3, claimed=0, price=10_000)]
    assert set(_untaken(selling)) == {3}
    assert _untaken(selling, now=LAUNCH + timedelta(days=7)) == {}  # under a quarter in
    assert _untaken(selling, forecast=_forecast(method="closed")) == {}


@pytest.mark.parametrize(
    ("price", "percent", "currency", "expected"),
    [
        (10_000, 80, "USD", 8_000),
        (9_999, 80, "USD", 7_900),
        (2_500, 50, "USD", 1_200),
        (150, 50, "USD", 100),
        (100, 50, "USD", 100),
        (1_234, 80, "JPY", 987),
    ],
)
def test_lower_prices_are_rounded_down_to_a_whole_unit(price, percent, currency, expected):
    assert price_rounded_down(price, percent=percent, currency=currency) == expected


# --- Rule 1 shows the chance too -----------------------------------------------------------------------


def test_the_price_step_advice_shows_the_chance_without_and_with_the_step():
    cone = (
        ConePoint(at=DAY_12, low=100_000, median=100_000, high=100_000),
        ConePoint(at=DEADLINE, low=250_000, median=300_000, high=400_000),
    )
    forecast = _forecast(goal=300_000, predicted_total=300_000, low=250_000, high=400_000, cone=cone)
    tier = _tier(1, claimed=20, price=2_500, limit=25)
    (item,) = price_step_advice(forecast=forecast, rewards=[tier], deadline=DEADLINE, now=DAY_12)
    # Without the step, the backers who find it full pledge nothing: the forecast moves down by that.
    down = item.total_without - 300_000
    assert item.chance_without == pytest.approx(
        goal_chance(
            goal=300_000, median=300_000 + down, low=250_000 + down, high=400_000 + down, floor=100_000, band=BAND
        )
    )
    assert item.chance_without < 0.5 < item.chance_with

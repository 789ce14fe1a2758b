"""Pricing advice rules 2 and 3, and the chance of the goal with and without a suggestion.

Rule 2, a goal the forecast gives under GOAL_ADVICE_CHANCE_BELOW once a third of the campaign's
time has passed: add a lower-priced tier, or extend the deadline once (within the longest
campaign). Rule 3, a tier nobody takes (no claim after a quarter of the time, while the other
tiers together have ADVICE_MIN_CLAIMS): lower its price for new backers (nobody holds it, so no
backer's price changes). The goal itself is never suggested lower: backers pledged towards it.

Each suggestion carries the chance of reaching the goal without it and with it, both read from the
forecast's predicted total and its band by ``risk.algorithms.goal_chance`` (a split lognormal), so
the two figures are comparable; the "with" case changes the forecast's total (and band) by what
the suggestion is expected to bring, stated in its explanation:

- a cheaper tier, or a tier made cheaper, takes backers at the pace of the slowest-selling tier
  that sells (claims a day so far) for the rest of the campaign, each paying its new price;
- a later deadline adds the forecast's own growth over the added days: the fitted curve
  F(t) = A(1 - e^(-kt)) carried on, or, for a forecast from similar campaigns, the rest of the
  total arriving evenly as it assumes; the band widens in proportion.

The rules read only what they are given (no database), so tests pin them on known forecasts.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from crowdfund_site.money import currency_exponent, format_amount
from projects.models import RewardTier
from projects.pricing import price_now
from projects.services import MAX_DURATION_DAYS

from ..algorithms import goal_chance
from .common import DAY
from .forecasts import Forecast

GOAL_ADVICE_CHANCE_BELOW = 0.30
# Rule 2 from this share of the campaign's time, rule 3 from this one.
GOAL_ADVICE_FROM_SHARE = 1 / 3
UNTAKEN_ADVICE_FROM_SHARE = 1 / 4
# The other tiers' claims together that show backers are there, just not for this tier.
UNTAKEN_OTHERS_MIN_CLAIMS = 3
# A lower-priced tier at this percent of the cheapest tier's price now; a tier nobody takes at this
# percent of its price; both rounded down to a whole unit of the currency.
LOWER_TIER_PRICE_PERCENT = 50
LOWER_PRICE_PERCENT = 80
# The extension suggested, in days, when the longest campaign leaves room for it.
EXTENSION_SUGGESTED_DAYS = 14

ADD_LOWER_TIER = "add_lower_tier"
EXTEND_DEADLINE = "extend_deadline"
LOWER_PRICE = "lower_price"


@dataclass(frozen=True, kw_only=True)
class GoalAdvice:
    """What every goal suggestion carries: the forecast's total, and the total and chance without and with it."""

    currency: str
    forecast_total: int
    total_without: int
    total_with: int
    chance_without: float
    chance_with: float
    explanation: str


@dataclass(frozen=True, kw_only=True)
class LowerTierAdvice(GoalAdvice):
    """Add a tier at ``price``, below the cheapest tier's ``cheapest_price``."""

    title: str
    price: int
    cheapest_price: int
    expected_backers: int
    kind: str = ADD_LOWER_TIER


@dataclass(frozen=True, kw_only=True)
class ExtendDeadlineAdvice(GoalAdvice):
    """Move the deadline ``days`` later, to ``new_deadline`` (at most ``most_days``)."""

    days: int
    most_days: int
    new_deadline: datetime
    kind: str = EXTEND_DEADLINE


@dataclass(frozen=True, kw_only=True)
class LowerPriceAdvice(GoalAdvice):
    """Lower ``reward_id``'s price from ``current_price`` to ``price`` for the pledges made from now on."""

    reward_id: int
    reward_title: str
    current_price: int
    price: int
    expected_backers: int
    kind: str = LOWER_PRICE


def forecast_goal_chance(forecast: Forecast, *, median: float, low: float, high: float) -> float:
    """Return the chance that a total with this ``median`` and band reaches ``forecast``'s goal."""
    return goal_chance(
        goal=forecast.goal, median=median, low=low, high=high, floor=forecast.pledged, band=forecast.band
    )


def forecast_chance_shifted(forecast: Forecast, extra: float) -> float:
    """Return the goal's chance if the forecast's total (and its whole band) moved by ``extra``."""
    return forecast_goal_chance(
        forecast,
        median=forecast.predicted_total + extra,
        low=forecast.low + extra,
        high=forecast.high + extra,
    )


def price_rounded_down(price: int, *, percent: int, currency: str) -> int:
    """Return ``percent`` of ``price`` rounded down to a whole unit of ``currency`` (at least one unit)."""
    unit = 10 ** currency_exponent(currency)
    return max(price * percent // (100 * unit) * unit, unit)


def _share_elapsed(*, launched_at: datetime, deadline: datetime, now: datetime) -> float:
    span = (deadline - launched_at).total_seconds()
    return (now - launched_at).total_seconds() / span if span > 0 else 1.0


def _slowest_pace(rewards: list[RewardTier], *, elapsed_days: float) -> tuple[float, str] | None:
    """Return (claims a day, title) of the slowest-selling tier that sells, or None."""
    selling = [r for r in rewards if r.claimed_count > 0]
    if not selling or elapsed_days <= 0:
        return None
    slowest = min(selling, key=lambda r: (r.claimed_count, r.pk or 0))
    return slowest.claimed_count / elapsed_days, slowest.title


def _percent(chance: float) -> str:
    return f"{round(chance * 100)}%"


def _figures(forecast: Forecast, **more) -> dict:
    return {
        "total": format_amount(forecast.predicted_total, forecast.currency),
        "goal": format_amount(forecast.goal, forecast.currency),
        **more,
    }


def extended_forecast(
    forecast: Forecast, *, launched_at: datetime, deadline: datetime, now: datetime, days: int
) -> tuple[float, float, float]:
    """Return (median, low, high) of the total at a deadline ``days`` later than ``deadline``.

    A fitted curve is carried on over the added days; a forecast from similar campaigns gets
    the rest of its total at the even pace it assumes. The band's distance from what is pledged
    grows in the same proportion as the median's.
    """
    horizon = (deadline - launched_at).total_seconds() / DAY
    elapsed = (now - launched_at).total_seconds() / DAY
    to_come = forecast.predicted_total - forecast.pledged
    if forecast.method == "curve" and forecast.amplitude and forecast.rate_per_day:
        amplitude, rate = forecast.amplitude, forecast.rate_per_day
        extra = amplitude * (math.exp(-rate * horizon) - math.exp(-rate * (horizon + days)))
    else:
        extra = to_come * days / max(horizon - elapsed, 1e-9)
    if to_come > 0:
        ratio = (to_come + extra) / to_come
        low = forecast.pledged + (forecast.low - forecast.pledged) * ratio
        high = forecast.pledged + (forecast.high - forecast.pledged) * ratio
    else:
        low, high = forecast.low + extra, forecast.high + extra
    return forecast.predicted_total + extra, low, high


def goal_advice(
    *,
    forecast: Forecast,
    rewards,
    launched_at: datetime,
    deadline: datetime,
    now: datetime,
    extension_days_left: int,
) -> list[LowerTierAdvice | ExtendDeadlineAdvice]:
    """Return rule 2's suggestions: a lower-priced tier and/or a later deadline, or nothing.

    Only from a third of the campaign's time on, and only when the chance of the goal (read from
    the forecast's band) is under GOAL_ADVICE_CHANCE_BELOW. The tier needs a tier that sells (its
    pace is the assumption) and a cheaper price to offer; the extension needs
    ``extension_days_left`` (0 once extended, or at the longest campaign) and must raise the chance.
    """
    if forecast.method == "closed" or now >= deadline:
        return []
    if _share_elapsed(launched_at=launched_at, deadline=deadline, now=now) < GOAL_ADVICE_FROM_SHARE:
        return []
    chance = forecast_chance_shifted(forecast, 0)
    if chance >= GOAL_ADVICE_CHANCE_BELOW:
        return []
    rewards = list(rewards)
    currency = forecast.currency
    elapsed_days = (now - launched_at).total_seconds() / DAY
    remaining_days = (deadline - now).total_seconds() / DAY
    reason = gettext(
        "A third of the campaign's time has passed, and the forecast (%(total)s by the deadline) gives "
        "the goal of %(goal)s a %(chance)s chance."
    ) % _figures(forecast, chance=_percent(chance))
    advice: list[LowerTierAdvice | ExtendDeadlineAdvice] = []
    pace = _slowest_pace(rewards, elapsed_days=elapsed_days)
    if rewards and pace is not None:
        cheapest = min(price_now(r, now).amount for r in rewards)
        price = price_rounded_down(cheapest, percent=LOWER_TIER_PRICE_PERCENT, currency=currency)
        backers = math.floor(pace[0] * remaining_days)
        if price < cheapest and backers >= 1:
            extra = backers * price
            figures = _figures(
                forecast,
                price=format_amount(price, currency),
                cheapest=format_amount(cheapest, currency),
                backers=f"{backers:,}",
                pace=f"{pace[0]:.1f}",
                slowest=pace[1],
            )
            suggestion = gettext(
                "Add a tier at %(price)s, below your cheapest (%(cheapest)s), for backers who find the others "
                "too dear. If it sells at the pace of your slowest-selling tier, “%(slowest)s” (%(pace)s a day), "
                "that is about %(backers)s more backers by the deadline."
            )
            advice.append(
                LowerTierAdvice(
                    currency=currency,
                    title=gettext("Supporter"),
                    price=price,
                    cheapest_price=cheapest,
                    expected_backers=backers,
                    forecast_total=forecast.predicted_total,
                    total_without=forecast.predicted_total,
                    total_with=forecast.predicted_total + extra,
                    chance_without=chance,
                    chance_with=forecast_chance_shifted(forecast, extra),
                    explanation=f"{reason} {suggestion % figures}",
                )
            )
    if extension_days_left >= 1:
        days = min(extension_days_left, EXTENSION_SUGGESTED_DAYS)
        median, low, high = extended_forecast(forecast, launched_at=launched_at, deadline=deadline, now=now, days=days)
        chance_with = forecast_goal_chance(forecast, median=median, low=low, high=high)
        if chance_with > chance:
            new_deadline = deadline + timedelta(days=days)
            figures = _figures(
                forecast,
                days=f"{days:,}",
                most=f"{extension_days_left:,}",
                date=date_format(timezone.localtime(new_deadline), "DATE_FORMAT"),
                extended=format_amount(round(median), currency),
                max=MAX_DURATION_DAYS,
            )
            suggestion = gettext(
                "Extend the deadline by %(days)s days, to %(date)s: at the forecast's pace that makes about "
                "%(extended)s. A deadline moves once only, by up to %(most)s days here (a campaign runs at "
                "most %(max)s days), and every backer is told by e-mail."
            )
            advice.append(
                ExtendDeadlineAdvice(
                    currency=currency,
                    days=days,
                    most_days=extension_days_left,
                    new_deadline=new_deadline,
                    forecast_total=forecast.predicted_total,
                    total_without=forecast.predicted_total,
                    total_with=round(median),
                    chance_without=chance,
                    chance_with=chance_with,
                    explanation=f"{reason} {suggestion % figures}",
                )
            )
    return advice


def _takes_new_claims(reward: RewardTier, now: datetime) -> bool:
    return reward.window_state(now) == "open" and not reward.sold_out


def untaken_tier_advice(
    *, forecast: Forecast, rewards, launched_at: datetime, deadline: datetime, now: datetime
) -> list[LowerPriceAdvice]:
    """Return rule 3's suggestions: lower the price of each tier nobody takes, for new backers.

    A tier nobody takes: open for claims, no price steps (their plan is the initiator's), and no
    claim after a quarter of the campaign's time while the other tiers together have
    UNTAKEN_OTHERS_MIN_CLAIMS. Its expected backers at the new price come at the pace of the
    slowest-selling other tier; no suggestion when that makes less than one.
    """
    if forecast.method == "closed" or now >= deadline:
        return []
    if _share_elapsed(launched_at=launched_at, deadline=deadline, now=now) < UNTAKEN_ADVICE_FROM_SHARE:
        return []
    rewards = list(rewards)
    currency = forecast.currency
    elapsed_days = (now - launched_at).total_seconds() / DAY
    remaining_days = (deadline - now).total_seconds() / DAY
    advice = []
    for reward in rewards:
        if reward.claimed_count or reward.price_steps or not _takes_new_claims(reward, now):
            continue
        others = [r for r in rewards if r.pk != reward.pk]
        if sum(r.claimed_count for r in others) < UNTAKEN_OTHERS_MIN_CLAIMS:
            continue
        pace = _slowest_pace(others, elapsed_days=elapsed_days)
        price = price_rounded_down(reward.minimum_amount, percent=LOWER_PRICE_PERCENT, currency=currency)
        backers = math.floor(pace[0] * remaining_days) if pace else 0
        if price >= reward.minimum_amount or backers < 1:
            continue
        extra = backers * price
        chance = forecast_chance_shifted(forecast, 0)
        figures = _figures(
            forecast,
            reward=reward.title,
            current=format_amount(reward.minimum_amount, currency),
            price=format_amount(price, currency),
            backers=f"{backers:,}",
            pace=f"{pace[0]:.1f}",
            slowest=pace[1],
            elapsed=f"{elapsed_days:.0f}",
        )
        explanation = gettext(
            "Nobody has chosen “%(reward)s” at %(current)s in %(elapsed)s days, while your other rewards sell. "
            "Lower it to %(price)s for new backers: if it then sells at the pace of “%(slowest)s” (%(pace)s a "
            "day), that is about %(backers)s more backers by the deadline. Nobody holds it now, so no "
            "backer's price changes."
        )
        advice.append(
            LowerPriceAdvice(
                reward_id=reward.pk,
                reward_title=reward.title,
                currency=currency,
                current_price=reward.minimum_amount,
                price=price,
                expected_backers=backers,
                forecast_total=forecast.predicted_total,
                total_without=forecast.predicted_total,
                total_with=forecast.predicted_total + extra,
                chance_without=chance,
                chance_with=forecast_chance_shifted(forecast, extra),
                explanation=explanation % figures,
            )
        )
    return advice

"""Pricing advice for the initiator's dashboard: concrete, explained adjustments from the forecast.

Rule 1, here. A limited tier that the forecast says will sell out before the deadline: open
a next price step at a higher price (``projects.services.reward_price_step_open``). A tier's
claims are taken to grow with the campaign's total, so the forecast's total at the deadline over
what is pledged now is the tier's growth too: that gives the claims it would have at the deadline
without a limit, and the cone gives when it reaches its limit. Each suggestion shows the forecast
without it (the backers who find the tier full pledge nothing) and with it (they take the next
step at the new price).

Rules 2 (a goal unlikely to be reached: a lower-priced tier, or the deadline extended once) and 3
(a tier nobody takes: a lower price for new backers) are in ``goal_advice``. Every suggestion
carries the chance of the goal without and with it (``goal_advice.forecast_goal_chance``).

The rules read only what they are given (no database), so tests pin them on known forecasts;
``pricing_advice_for_campaign`` feeds them the campaign's forecast and tiers.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from crowdfund_site.money import currency_exponent, format_amount
from projects.live_changes import deadline_extension_days_left
from projects.models import Campaign, CampaignStatus, RewardTier
from projects.pricing import PRICE_STEPS_MAX

from .forecasts import Forecast, forecast_for_campaign
from .goal_advice import (
    ExtendDeadlineAdvice,
    LowerPriceAdvice,
    LowerTierAdvice,
    forecast_chance_shifted,
    goal_advice,
    untaken_tier_advice,
)

# The next step's price, in percent of the price now, rounded up to a whole unit of the currency.
PRICE_STEP_RAISE_PERCENT = 120
# A tier needs this many claims before its pace says anything.
ADVICE_MIN_CLAIMS = 3
OPEN_PRICE_STEP = "open_price_step"


@dataclass(frozen=True)
class PriceStepAdvice:
    """Open a next price step on ``reward_id``: ``slots`` more at ``price`` after ``limit`` at ``current_price``."""

    reward_id: int
    reward_title: str
    currency: str
    claimed: int
    limit: int
    current_price: int
    price: int
    slots: int
    projected_claims: int  # claims at the deadline if the tier had no limit
    sells_out_at: datetime | None  # None: sold out already
    total_without: int
    total_with: int
    forecast_total: int
    explanation: str
    chance_without: float = 0.0
    chance_with: float = 0.0
    kind: str = OPEN_PRICE_STEP


def next_step_price(price: int, currency: str) -> int:
    """Return ``price`` raised by PRICE_STEP_RAISE_PERCENT, rounded up to a whole unit of ``currency``."""
    unit = 10 ** currency_exponent(currency)
    return -(-price * PRICE_STEP_RAISE_PERCENT // (100 * unit)) * unit


def _reaches(forecast: Forecast, *, amount: float) -> datetime | None:
    """Return when the cone's median total reaches ``amount`` (linear between its points), or None."""
    previous = None
    for point in forecast.cone:
        if point.median >= amount:
            if previous is None or point.median == previous.median:
                return point.at
            share = (amount - previous.median) / (point.median - previous.median)
            return previous.at + (point.at - previous.at) * share
        previous = point
    return None


def _can_take_a_step(reward: RewardTier, now: datetime) -> bool:
    steps = reward.price_steps or []
    return (
        reward.quantity_limit is not None
        and reward.claimed_count >= ADVICE_MIN_CLAIMS
        and len(steps) < PRICE_STEPS_MAX
        and all(step["until_claimed"] is None or step["until_claimed"] < reward.quantity_limit for step in steps)
        and (reward.available_until is None or reward.available_until > now)
    )


def price_step_advice(
    *, forecast: Forecast, rewards: Iterable[RewardTier], deadline: datetime, now: datetime
) -> list[PriceStepAdvice]:
    """Return a suggestion for each limited tier the forecast says sells out before ``deadline``.

    No database access: ``rewards`` are read as given. Nothing is suggested on a closed forecast,
    with nothing pledged, or for a tier with fewer than ADVICE_MIN_CLAIMS claims, an ended
    window, or no room for one more step.
    """
    if forecast.method == "closed" or forecast.pledged <= 0 or now >= deadline:
        return []
    currency, growth = forecast.currency, forecast.predicted_total / forecast.pledged
    advice = []
    for reward in rewards:
        if not _can_take_a_step(reward, now):
            continue
        claimed, limit = reward.claimed_count, reward.quantity_limit
        projected = claimed * growth
        sold_out = claimed >= limit
        if not sold_out and projected < limit:
            continue
        # The total at which the tier's claims reach its limit, at its share of the pledges.
        sells_out_at = None if sold_out else (_reaches(forecast, amount=limit * forecast.pledged / claimed) or deadline)
        if sells_out_at is not None and sells_out_at >= deadline:
            continue
        projected_claims = math.ceil(projected - 1e-9)
        slots = min(max(projected_claims - limit, 1), limit)
        current, price = reward.minimum_amount, next_step_price(reward.minimum_amount, currency)
        total_without = max(forecast.predicted_total - slots * current, forecast.pledged)
        total_with = forecast.predicted_total + slots * (price - current)
        figures = {
            "reward": reward.title,
            "claimed": f"{claimed:,}",
            "limit": f"{limit:,}",
            "total": format_amount(forecast.predicted_total, currency),
            "pledged": format_amount(forecast.pledged, currency),
            "more": f"{slots:,}",
            "price": format_amount(price, currency),
            "current": format_amount(current, currency),
        }
        if sold_out:
            reason = gettext(
                "“%(reward)s” is sold out (%(limit)s of %(limit)s). The forecast (%(total)s by the deadline, "
                "%(pledged)s now) has about %(more)s more backers wanting it before the deadline."
            )
        else:
            figures["date"] = date_format(timezone.localtime(sells_out_at), "DATE_FORMAT")
            reason = gettext(
                "“%(reward)s” has %(claimed)s of %(limit)s claimed. The forecast (%(total)s by the deadline, "
                "%(pledged)s now) has it selling out around %(date)s, with about %(more)s more backers "
                "wanting it after that."
            )
        suggestion = gettext(
            "Open a next step: %(more)s more at %(price)s, while the first %(limit)s keep %(current)s. "
            "Nobody who already backed it pays more."
        )
        advice.append(
            PriceStepAdvice(
                reward_id=reward.pk,
                reward_title=reward.title,
                currency=currency,
                claimed=claimed,
                limit=limit,
                current_price=current,
                price=price,
                slots=slots,
                projected_claims=projected_claims,
                sells_out_at=sells_out_at,
                total_without=total_without,
                total_with=total_with,
                forecast_total=forecast.predicted_total,
                explanation=f"{reason % figures} {suggestion % figures}",
                chance_without=forecast_chance_shifted(forecast, total_without - forecast.predicted_total),
                chance_with=forecast_chance_shifted(forecast, total_with - forecast.predicted_total),
            )
        )
    return advice


Advice = PriceStepAdvice | LowerPriceAdvice | LowerTierAdvice | ExtendDeadlineAdvice


def pricing_advice_for_campaign(
    campaign: Campaign, *, forecast: Forecast | None = None, now: datetime | None = None
) -> list[Advice]:
    """Return the pricing advice for a live campaign (none otherwise); ``forecast`` if already made.

    Rule 1's suggestions first, then rule 3's, then rule 2's. Reads the campaign's tiers through
    ``campaign.rewards`` (prefetched by the dashboard's selector) and, for rule 2, whether its
    deadline may still move (one query).
    """
    if campaign.status != CampaignStatus.LIVE or campaign.deadline is None or campaign.launched_at is None:
        return []
    now = now or timezone.now()
    forecast = forecast or forecast_for_campaign(campaign, now=now)
    rewards = list(campaign.rewards.all())
    times = {"launched_at": campaign.launched_at, "deadline": campaign.deadline, "now": now}
    return [
        *price_step_advice(forecast=forecast, rewards=rewards, deadline=campaign.deadline, now=now),
        *untaken_tier_advice(forecast=forecast, rewards=rewards, **times),
        *goal_advice(
            forecast=forecast,
            rewards=rewards,
            extension_days_left=deadline_extension_days_left(campaign),
            **times,
        ),
    ]

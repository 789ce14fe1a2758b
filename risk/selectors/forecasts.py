"""Funding forecasts: where a campaign's total is heading by its deadline."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from crowdfund_site.money import format_amount
from pledges.selectors import pledges_held_per_interval
from projects.models import Campaign

from ..algorithms import forecast_saturating
from .common import CLOSED_STATUSES, DAY, _to_minor

# The curve is fitted once a campaign has this many pledges over at least this long; before
# that, the forecast comes from similar closed campaigns.
FORECAST_MIN_PLEDGES = 5
FORECAST_MIN_ELAPSED = timedelta(days=1)
# The cumulative series is sampled at this many equally spaced times since launch.
FORECAST_POINTS = 48
FORECAST_BOOTSTRAP = 200
FORECAST_BAND = (0.05, 0.95)
CONE_POINTS = 12
# Similar campaigns needed for the prior; fewer and it widens to the currency, then the default.
PRIOR_MIN_SIMILAR = 5
# The most recent closed campaigns the prior looks at.
PRIOR_MAX = 1_000
# Without any history: a typical campaign raises 60 % of its goal, spread over a factor of e.
DEFAULT_PRIOR_MEDIAN_RATIO = 0.6
DEFAULT_PRIOR_SIGMA = 1.0


@dataclass(frozen=True)
class ConePoint:
    at: datetime
    low: int
    median: int
    high: int


@dataclass(frozen=True)
class Forecast:
    """Where a campaign's funding is heading: total at the deadline, a band, and the odds."""

    campaign_id: int
    currency: str
    goal: int
    pledged: int
    method: str  # "curve" (fitted to its own pledges), "prior" (similar campaigns) or "closed"
    predicted_total: int
    low: int  # FORECAST_BAND quantiles of the total at the deadline
    high: int
    probability_of_goal: float
    amplitude: float | None  # A in F(t) = A(1 - e^(-kt)), minor units
    rate_per_day: float | None  # k
    cone: tuple[ConePoint, ...]
    explanation: str
    band: tuple[float, float] = FORECAST_BAND


def _prior_ratios(campaign: Campaign, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Return sampled final-total / goal ratios of similar closed campaigns, and what they were."""
    closed = (
        Campaign.objects.filter(status__in=CLOSED_STATUSES, currency=campaign.currency)
        .exclude(pk=campaign.pk)
        .order_by("-deadline")
    )
    rows = list(closed.filter(category_id=campaign.category_id).values_list("pledged_amount", "goal")[:PRIOR_MAX])
    source = ngettext(
        "%(count)d closed campaign in its category", "%(count)d closed campaigns in its category", len(rows)
    ) % {"count": len(rows)}
    if len(rows) < PRIOR_MIN_SIMILAR:
        rows = list(closed.values_list("pledged_amount", "goal")[:PRIOR_MAX])
        source = ngettext(
            "%(count)d closed %(currency)s campaign", "%(count)d closed %(currency)s campaigns", len(rows)
        ) % {"count": len(rows), "currency": campaign.currency}
    if len(rows) < PRIOR_MIN_SIMILAR:
        ratios = np.exp(
            np.log(DEFAULT_PRIOR_MEDIAN_RATIO) + DEFAULT_PRIOR_SIGMA * rng.standard_normal(FORECAST_BOOTSTRAP)
        )
        typical = round(DEFAULT_PRIOR_MEDIAN_RATIO * 100)
        return ratios, gettext("the platform's default (a typical campaign raises %(percent)d%% of its goal)") % {
            "percent": typical
        }
    observed = np.array([pledged / goal for pledged, goal in rows])
    return rng.choice(observed, size=FORECAST_BOOTSTRAP), source


def _cumulative_pledged(*, campaign_id: int, start: datetime, end: datetime, points: int) -> tuple[int, np.ndarray]:
    """Return (pledges held by ``end``, amount held by each of ``points`` times from ``start`` to ``end``)."""
    count, per_interval = pledges_held_per_interval(campaign_id=campaign_id, start=start, end=end, points=points)
    return count, np.cumsum(np.asarray(per_interval, dtype=np.int64))


def forecast_for_campaign(campaign: Campaign, *, now: datetime | None = None) -> Forecast:
    """Return the funding forecast of ``campaign`` (see ``Forecast``); deterministic per campaign.

    With enough pledges, cumulative pledges are fitted to F(t) = A(1 - e^(-kt)) and the band is a
    bootstrap of residuals; before that, similar closed campaigns give the prior.
    """
    now = now or timezone.now()
    start = campaign.launched_at or now
    deadline = campaign.deadline or start + timedelta(days=campaign.duration_days)
    end = min(now, deadline)
    count, cumulative = _cumulative_pledged(campaign_id=campaign.pk, start=start, end=end, points=FORECAST_POINTS)
    pledged = int(cumulative[-1])
    elapsed = max((end - start).total_seconds() / DAY, 0.0)
    horizon = max((deadline - start).total_seconds() / DAY, elapsed)
    goal, currency = campaign.goal, campaign.currency

    def money(amount: float) -> str:
        return format_amount(_to_minor(amount), currency)

    if now >= deadline:
        reached = 1.0 if pledged >= goal else 0.0
        return Forecast(
            campaign_id=campaign.pk,
            currency=currency,
            goal=goal,
            pledged=pledged,
            method="closed",
            predicted_total=pledged,
            low=pledged,
            high=pledged,
            probability_of_goal=reached,
            amplitude=None,
            rate_per_day=None,
            cone=(ConePoint(at=deadline, low=pledged, median=pledged, high=pledged),),
            explanation=gettext("The campaign has ended with %(pledged)s pledged.") % {"pledged": money(pledged)},
        )

    rng = np.random.default_rng(campaign.pk)
    cone_days = np.linspace(elapsed, horizon, CONE_POINTS)
    lo_q, hi_q = FORECAST_BAND
    if count >= FORECAST_MIN_PLEDGES and elapsed * DAY >= FORECAST_MIN_ELAPSED.total_seconds():
        t = elapsed * np.arange(1, FORECAST_POINTS + 1) / FORECAST_POINTS
        result = forecast_saturating(
            t, cumulative.astype(float), cone_days, rng=rng, n_boot=FORECAST_BOOTSTRAP, floor=pledged
        )
        samples = result.samples
        predicted = max(float(result.fit.at(horizon)), pledged)
        amplitude, rate = result.fit.amplitude, result.fit.rate
        method = "curve"
        explanation = gettext(
            "Fitted to %(count)d pledges over %(days).1f days: F(t) = A(1 - e^(-kt)) with "
            "A = %(amplitude)s and k = %(rate).3f per day; the band is a bootstrap of the residuals."
        ) % {"count": count, "days": elapsed, "amplitude": money(amplitude), "rate": rate}
    else:
        ratios, source = _prior_ratios(campaign, rng)
        # The prior campaign raises its total evenly over its run; this one has the rest to go.
        still_to_come = ratios * goal * np.clip(1 - elapsed / horizon, 0, 1) if horizon > 0 else ratios * 0
        fraction = (cone_days - elapsed) / max(horizon - elapsed, 1e-9)
        samples = pledged + np.outer(still_to_come, fraction)
        predicted = float(np.median(samples[:, -1]))
        amplitude = rate = None
        method = "prior"
        explanation = gettext(
            "Too few pledges yet to fit this campaign's own curve; based on %(source)s, "
            "with %(pledged)s already pledged."
        ) % {"source": source, "pledged": money(pledged)}
    low, median, high = np.quantile(samples, [lo_q, 0.5, hi_q], axis=0)
    final = samples[:, -1]
    cone = tuple(
        ConePoint(
            at=start + timedelta(days=float(day)),
            low=_to_minor(low[i]),
            median=_to_minor(median[i]),
            high=_to_minor(high[i]),
        )
        for i, day in enumerate(cone_days)
    )
    predicted_total = _to_minor(predicted)
    return Forecast(
        campaign_id=campaign.pk,
        currency=currency,
        goal=goal,
        pledged=pledged,
        method=method,
        predicted_total=predicted_total,
        low=min(_to_minor(low[-1]), predicted_total),
        high=max(_to_minor(high[-1]), predicted_total),
        probability_of_goal=float(np.mean(final >= goal)),
        amplitude=amplitude,
        rate_per_day=rate,
        cone=cone,
        explanation=explanation,
    )

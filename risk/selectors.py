"""Reads of the risk app: features, scores, fraud signals, forecasts and recommendations.

Nothing here writes. Each function loads what it needs in a few bulk queries and hands arrays
to the numpy models in ``risk.algorithms``, so many campaigns cost about as much as one.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, FloatField, Func, Q, QuerySet
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from crowdfund_site.money import format_amount
from pledges.models import COUNTED_STATUSES, Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus, Category, RewardTier

from . import fraud, review
from .algorithms import LogisticModel, forecast_saturating, poisson_z, score_recommendations, top_k
from .models import PledgeRiskCheck, RiskAssessment, RiskModelVersion

DAY = 86_400.0
# Ids per query: far below every database's limit on bound parameters.
CHUNK = 5_000
CLOSED_STATUSES = (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED)


class EpochSeconds(Func):
    """A datetime column as seconds since 1970-01-01 UTC, computed by the database.

    Reading thousands of timestamps this way skips building (and making aware) one Python
    datetime per row, which costs more than the numpy models that use them.
    """

    arity = 1
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django keeps SQLite datetimes as UTC text; 2440587.5 is the Julian day of the Unix epoch.
        template = "((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_postgresql(self, compiler, connection, **extra_context):
        # date_part gives a double directly; EXTRACT computes a numeric first (PostgreSQL 14+),
        # which is slower (measured in benchmarks/README.md, risk section).
        template = "date_part('epoch', %(expressions)s)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def _seconds(values: Iterable[float | None]) -> np.ndarray:
    """Return EpochSeconds values as a float array, NULL as NaN."""
    return np.array(list(values), dtype=float)


def _to_minor(value: float) -> int:
    """Round an estimate to whole minor units (forecasts are estimates, never money moved)."""
    return round(float(value))  # to the nearest, halves to even as numpy's rint


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _unique_ids(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in ids))


# --- Review risk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFeatures:
    """The review model's inputs for several campaigns: one row each, columns in FEATURE_NAMES."""

    campaign_ids: np.ndarray
    matrix: np.ndarray
    contexts: list[dict]  # what the reasons in words need (category name, ...)

    def as_json(self, i: int) -> dict:
        return {name: round(float(v), 6) for name, v in zip(review.FEATURE_NAMES, self.matrix[i], strict=True)}


def _median_goals(keys: set[tuple[int, str]]) -> dict[tuple[int, str], float]:
    """Return the median goal of submitted campaigns per (category, currency)."""
    goals: dict[tuple[int, str], list[int]] = defaultdict(list)
    rows = (
        Campaign.objects.exclude(status=CampaignStatus.DRAFT)
        .filter(category_id__in={k[0] for k in keys})
        .order_by()
        .values_list("category_id", "currency", "goal")
    )
    for category_id, currency, goal in rows:
        goals[(category_id, currency)].append(goal)
    return {key: float(np.median(values)) for key, values in goals.items()}


def _initiator_history(initiator_ids: set[int]) -> dict[int, list[tuple[float, int, bool]]]:
    """Return each initiator's closed campaigns as (deadline timestamp, id, failed)."""
    history: dict[int, list[tuple[float, int, bool]]] = defaultdict(list)
    rows = (
        Campaign.objects.filter(initiator_id__in=initiator_ids, status__in=CLOSED_STATUSES, deadline__isnull=False)
        .order_by()
        .values_list("initiator_id", "id", "status", "deadline")
    )
    for initiator_id, campaign_id, status, deadline in rows:
        history[initiator_id].append((deadline.timestamp(), campaign_id, status == CampaignStatus.FAILED))
    return history


CAMPAIGN_FEATURE_FIELDS = (
    "id",
    "initiator_id",
    "category_id",
    "category__name",
    "currency",
    "goal",
    "duration_days",
    "launched_ts",
    "deadline_ts",
    "submitted_ts",
    "story_length",
    "joined_ts",
    "initiator__email_verified",
)


def _campaign_batches(
    campaigns: QuerySet[Campaign] | Iterable[int],
) -> tuple[list[tuple[QuerySet, Q]], list[int] | None]:
    """Return (campaign queryset, reward tier filter) pairs covering ``campaigns``, and the id order.

    A queryset is used as one subquery; ids go in chunks.
    """
    if isinstance(campaigns, QuerySet):
        pks = campaigns.order_by().values("pk")
        return [(Campaign.objects.filter(pk__in=pks).order_by(), Q(campaign_id__in=pks))], None
    ids = _unique_ids(campaigns)
    return [(Campaign.objects.filter(pk__in=chunk).order_by(), Q(campaign_id__in=chunk)) for chunk in _chunks(ids)], ids


def campaign_review_features(
    campaigns: QuerySet[Campaign] | Iterable[int], *, now: datetime | None = None
) -> ReviewFeatures:
    """Return the review model's features for ``campaigns`` (a queryset, or ids; unknown ids are left out).

    Rows follow the order of the ids given (by id for a queryset). Everything is measured as of
    the campaign's submission for review (now, if it has not been submitted), so the model is
    trained on what a reviewer could have known. A few bulk queries, then column arithmetic.
    """
    now_ts = (now or timezone.now()).timestamp()
    batches, ids = _campaign_batches(campaigns)
    rows, tiers = [], []
    for batch, tier_filter in batches:
        rows += batch.annotate(
            story_length=Length("description"),
            launched_ts=EpochSeconds("launched_at"),
            deadline_ts=EpochSeconds("deadline"),
            submitted_ts=EpochSeconds("submitted_at"),
            joined_ts=EpochSeconds("initiator__date_joined"),
        ).values_list(*CAMPAIGN_FEATURE_FIELDS)
        tiers += (
            RewardTier.objects.filter(tier_filter)
            .order_by()
            .values_list("campaign_id", EpochSeconds("estimated_delivery"))
        )
    if ids is None:
        rows.sort(key=lambda r: r[0])
    else:
        position = {campaign_id: i for i, campaign_id in enumerate(ids)}
        rows.sort(key=lambda r: position[r[0]])
    n = len(rows)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(CAMPAIGN_FEATURE_FIELDS)
    (campaign_ids, initiator_ids, category_ids, category_names, currencies, goals, duration_days) = columns[:7]
    launched_at, deadline, submitted_at, story_length, date_joined, email_verified = columns[7:]

    launched, closes, joined = _seconds(launched_at), _seconds(deadline), _seconds(date_joined)
    as_of = _seconds(submitted_at)
    as_of[np.isnan(as_of)] = now_ts
    planned_days = np.array(duration_days, dtype=float)
    run_days = np.where(np.isnan(launched) | np.isnan(closes), planned_days, (closes - launched) / DAY)

    # Reward tiers: how many, and how long after the deadline (the planned one before launch) they deliver.
    index = {campaign_id: i for i, campaign_id in enumerate(campaign_ids)}
    tier_rows = np.array([index[c] for c, _ in tiers], dtype=np.int64)
    tier_count = np.bincount(tier_rows, minlength=n).astype(float)
    delivery_at = _seconds(at for _, at in tiers)
    dated = ~np.isnan(delivery_at)
    reference = np.where(np.isnan(closes), as_of + planned_days * DAY, closes)
    after = np.maximum(delivery_at[dated] - reference[tier_rows[dated]], 0.0) / DAY
    dated_count = np.bincount(tier_rows[dated], minlength=n)
    has_delivery = dated_count > 0
    delivery = np.full(n, review.NEUTRAL_DELIVERY_MONTHS)
    total = np.bincount(tier_rows[dated], weights=after, minlength=n)
    delivery[has_delivery] = total[has_delivery] / dated_count[has_delivery] / 30.44

    # The initiator's campaigns that had closed before this one was submitted.
    history = _initiator_history(set(initiator_ids))
    previous_ok, previous_failed = np.zeros(n), np.zeros(n)
    for i, initiator_id in enumerate(initiator_ids):
        for closed_ts, other_id, failed in history.get(initiator_id, ()):
            if other_id != campaign_ids[i] and closed_ts < as_of[i]:
                if failed:
                    previous_failed[i] += 1
                else:
                    previous_ok[i] += 1

    medians = _median_goals(set(zip(category_ids, currencies, strict=True)))
    goal = np.array(goals, dtype=float)
    median = np.array([medians.get(key, 0.0) for key in zip(category_ids, currencies, strict=True)], dtype=float)
    median = np.where(median > 0, median, goal)

    matrix = np.column_stack(
        [
            np.log1p(np.maximum((as_of - joined) / DAY, 0.0)),
            np.array(email_verified, dtype=float),
            np.log1p(previous_ok),
            np.log1p(previous_failed),
            np.log(goal / median),
            run_days,
            np.log1p(np.array([length or 0 for length in story_length], dtype=float)),
            tier_count,
            delivery,
        ]
    ).reshape(n, len(review.FEATURES))
    contexts = [
        {"category": name, "has_delivery": bool(known)}
        for name, known in zip(category_names, has_delivery, strict=True)
    ]
    return ReviewFeatures(campaign_ids=np.array(campaign_ids, dtype=np.int64), matrix=matrix, contexts=contexts)


def risk_model_current() -> RiskModelVersion | None:
    """Return the newest review model version, or None before the first one is stored."""
    return RiskModelVersion.objects.order_by("-version").first()


@dataclass(frozen=True)
class CampaignRiskScores:
    features: ReviewFeatures
    probabilities: np.ndarray  # of failure, one per campaign
    contributions: np.ndarray  # (n, d): each feature's share of the log-odds

    def reasons(self, i: int) -> list[str]:
        return review.reasons(self.features.matrix[i], self.contributions[i], self.features.contexts[i])


def campaign_risk_scores(
    campaigns: QuerySet[Campaign] | Iterable[int], *, model: LogisticModel | None = None, now: datetime | None = None
) -> CampaignRiskScores:
    """Score many campaigns (a queryset, or ids) at once.

    ``model`` defaults to the current version, or the prior before there is one.
    """
    if model is None:
        current = risk_model_current()
        usable = current is not None and current.feature_names == list(review.FEATURE_NAMES)
        model = current.as_model() if usable else review.prior_model()
    features = campaign_review_features(campaigns, now=now)
    return CampaignRiskScores(
        features=features,
        probabilities=model.predict(features.matrix),
        contributions=model.contributions(features.matrix),
    )


def risk_latest_assessment_for(campaign_ids: Iterable[int]) -> dict[int, RiskAssessment]:
    """Return the newest assessment of each campaign that has one, by campaign id."""
    latest: dict[int, RiskAssessment] = {}
    for chunk in _chunks(_unique_ids(campaign_ids)):
        assessments = (
            RiskAssessment.objects.filter(campaign_id__in=chunk)
            .select_related("model_version")
            .order_by("campaign_id", "-created_at", "-id")
        )
        for assessment in assessments:
            latest.setdefault(assessment.campaign_id, assessment)
    return latest


def _latest_probabilities(campaigns: QuerySet[Campaign]) -> dict[int, float]:
    """Return the latest risk probability of each campaign in ``campaigns`` that has one."""
    rows = (
        RiskAssessment.objects.filter(campaign__in=campaigns.order_by().values("pk"))
        .order_by("campaign_id", "-created_at", "-id")
        .values_list("campaign_id", "probability")
    )
    latest: dict[int, float] = {}
    for campaign_id, probability in rows:
        latest.setdefault(campaign_id, probability)
    return latest


# --- Fraud ---------------------------------------------------------------------------------------


def pledge_fraud_evaluation(*, pledge: Pledge, ip: str | None = None) -> fraud.FraudEvaluation:
    """Measure every fraud signal around ``pledge`` and combine them (see ``risk.fraud``).

    Windows end at the pledge's creation, so evaluating the same pledge later gives the same
    answer. Everything comes from our own records of what the processor answered: declines
    from the pledges' failure codes, the card from the fingerprint the charge result carried.
    Without ``ip`` the IP signals are skipped; without a card fingerprint, the card ones.
    """
    t0 = pledge.created_at
    hour_ago = t0 - fraud.VELOCITY_WINDOW
    campaign = Campaign.objects.only("id", "initiator_id", "launched_at").get(pk=pledge.campaign_id)
    initiator_id = campaign.initiator_id
    values: dict[str, float | None] = {}

    by_backer = Pledge.objects.filter(backer_id=pledge.backer_id, created_at__gte=hour_ago, created_at__lte=t0)
    values["backer_velocity"] = by_backer.count()
    values["card_testing"] = (
        by_backer.filter(status=PledgeStatus.FAILED)
        .exclude(pk=pledge.pk)
        .exclude(failure_code__in=fraud.NON_CARD_FAILURE_CODES)
        .count()
    )

    card = pledge.card_fingerprint
    if card:
        card_pledges = Pledge.objects.filter(
            card_fingerprint=card, created_at__gte=t0 - fraud.CARD_SHARING_WINDOW, created_at__lte=t0
        )
        values["card_velocity"] = card_pledges.filter(created_at__gte=hour_ago).count()
        values["card_shared"] = (
            card_pledges.exclude(backer_id__in=[pledge.backer_id, initiator_id])
            .order_by()
            .values("backer_id")
            .distinct()
            .count()
        )
        values["initiator_card"] = int(Pledge.objects.filter(backer_id=initiator_id, card_fingerprint=card).exists())

    if ip:
        values["ip_shared"] = (
            PledgeRiskCheck.objects.filter(
                ip=ip, pledge__created_at__gte=t0 - fraud.IP_WINDOW, pledge__created_at__lte=t0
            )
            .exclude(pledge__backer_id__in=[pledge.backer_id, initiator_id])
            .order_by()
            .values("pledge__backer_id")
            .distinct()
            .count()
        )
        values["initiator_ip"] = int(PledgeRiskCheck.objects.filter(ip=ip, pledge__backer_id=initiator_id).exists())

    launched_at = campaign.launched_at
    if launched_at is not None and t0 - launched_at >= fraud.SPIKE_MIN_HISTORY:
        # Only pledges that were charged: a run of declines is card testing, not a spike.
        counts = Pledge.objects.filter(
            campaign_id=campaign.pk, created_at__gte=launched_at, created_at__lte=t0, held_at__isnull=False
        ).aggregate(
            recent=Count("id", filter=Q(created_at__gte=hour_ago)),
            before=Count("id", filter=Q(created_at__lt=hour_ago)),
        )
        hours_before = (hour_ago - launched_at).total_seconds() / 3600
        values["campaign_spike"] = round(float(poisson_z(counts["recent"], counts["before"] / hours_before)), 3)

    return fraud.evaluate(values)


# --- Funding forecast ----------------------------------------------------------------------------

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


# Held pledges of one campaign summed per forecast interval; ``held`` is the pledge's hold time in
# seconds since the epoch, computed by each database as ``EpochSeconds`` does. The ORM expression
# it stands for:
#     Pledge.objects.filter(campaign_id=..., held_at__lte=end, status__in=COUNTED_STATUSES)
#     .annotate(interval=Ceil((EpochSeconds("held_at") - start) * scale)).values("interval")
#     .annotate(Count("id"), Sum("amount"))
_CUMULATIVE_SQL = (
    "SELECT CEILING(({held} - %s) * %s), COUNT(*), SUM(amount) FROM pledges_pledge "
    "WHERE campaign_id = %s AND held_at <= %s AND status IN ({statuses}) GROUP BY 1"
)
_STATUS_PLACEHOLDERS = ", ".join(["%s"] * len(COUNTED_STATUSES))
_CUMULATIVE_SQL_BY_VENDOR = {
    "postgresql": _CUMULATIVE_SQL.format(held="date_part('epoch', held_at)", statuses=_STATUS_PLACEHOLDERS),
    "sqlite": _CUMULATIVE_SQL.format(
        held="((julianday(held_at) - 2440587.5) * 86400.0)", statuses=_STATUS_PLACEHOLDERS
    ),
}


def _cumulative_pledged(*, campaign_id: int, start: datetime, end: datetime, points: int) -> tuple[int, np.ndarray]:
    """Return (pledges held by ``end``, amount held by each of ``points`` times from ``start`` to ``end``).

    The times are equally spaced and the last is ``end``. Interval i (1..points) holds the
    pledges with edge(i-1) < held_at <= edge(i); a pledge held at or before the start counts
    from the first point on.

    The database sums the pledges per interval, so a campaign with thousands of pledges sends
    back at most ``points`` rows. The statement is written out rather than built with the ORM
    because building the grouped queryset cost more than running it, against the forecast's
    budget per campaign (``benchmarks/risk.py``; figures in benchmarks/README.md).
    """
    span = max((end - start).total_seconds(), 1e-9)
    # ``end`` goes through the database's own conversion, as the ORM's would: SQLite stores UTC
    # text, and an aware datetime in another zone compared as given would be hours off.
    held_by = connection.ops.adapt_datetimefield_value(end)
    with connection.cursor() as cursor:
        cursor.execute(
            _CUMULATIVE_SQL_BY_VENDOR[connection.vendor],
            [start.timestamp(), points / span, campaign_id, held_by, *map(str, COUNTED_STATUSES)],
        )
        rows = cursor.fetchall()
    per_interval = np.zeros(points, dtype=np.int64)
    count = 0
    for index, pledges, amount in rows:
        per_interval[min(max(int(index), 1), points) - 1] += amount
        count += pledges
    return count, np.cumsum(per_interval)


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


# --- Matching ------------------------------------------------------------------------------------

# Components of a recommendation score, each in [0, 1], and their weights. Category dominates,
# so a campaign in a category the backer likes comes before any other.
MATCH_COMPONENTS = ("category", "safety", "progress", "urgency", "popularity", "pledge_fit")
MATCH_WEIGHTS = np.array([3.0, 1.0, 0.6, 0.5, 0.5, 0.3])
# A declared interest counts like half of all of a backer's past pledges being in that category.
INTEREST_AFFINITY = 0.5
# Risk of failure assumed for a campaign that has no assessment.
UNASSESSED_RISK = 0.5
# Days over which "ending soon" fades.
URGENCY_DAYS = 7.0
DEFAULT_RISK_TOLERANCE = 0.5
POOL_CACHE_KEY = "risk:live-campaign-pool:v1"
POOL_CACHE_SECONDS = 60


@dataclass(frozen=True)
class BackerProfile:
    """What a backer likes, from their pledges and declared interests."""

    user_id: int | None
    category_counts: dict[int, int]
    interests: frozenset[int]
    usual_pledge: int | None  # median pledge, in minor units of ``usual_currency``
    usual_currency: str | None
    risk_tolerance: float  # 0: avoid risky campaigns, 1: indifferent to risk
    backed_campaign_ids: frozenset[int]


@dataclass(frozen=True)
class CampaignPool:
    """Live campaigns as arrays, loaded once and scored against any number of backers."""

    ids: np.ndarray
    category_ids: np.ndarray
    goal: np.ndarray
    pledged: np.ndarray
    backers: np.ndarray
    deadlines: np.ndarray  # Unix timestamps
    risk: np.ndarray  # probability of failure
    currency: np.ndarray
    initiator_ids: np.ndarray
    category_names: dict[int, str]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Recommendation:
    campaign_id: int
    score: float
    reason: str
    campaign: Campaign | None = None


def backer_profile_for(
    user, *, interests: Iterable[Category | int] | None = None, risk_tolerance: float = DEFAULT_RISK_TOLERANCE
) -> BackerProfile:
    """Return ``user``'s profile: categories and size of past pledges, plus declared ``interests``.

    An anonymous user (or None) gets an empty profile, which recommends for a cold start.
    """
    interest_ids = frozenset(i.pk if isinstance(i, Category) else int(i) for i in interests or ())
    tolerance = min(max(float(risk_tolerance), 0.0), 1.0)
    if user is None or not getattr(user, "is_authenticated", False):
        return BackerProfile(None, {}, interest_ids, None, None, tolerance, frozenset())
    backed = Pledge.objects.filter(backer_id=user.pk, status__in=[*COUNTED_STATUSES, PledgeStatus.REFUNDED]).order_by()
    rows = backed.values_list("campaign_id", "campaign__category_id", "amount", "currency", "status")
    categories: Counter[int] = Counter()
    backed_per_category: dict[int, set[int]] = defaultdict(set)
    amounts: dict[str, list[int]] = defaultdict(list)
    open_campaigns = set()
    for campaign_id, category_id, amount, currency, status in rows:
        backed_per_category[category_id].add(campaign_id)
        amounts[currency].append(amount)
        if status in COUNTED_STATUSES:
            open_campaigns.add(campaign_id)
    categories.update({category_id: len(ids) for category_id, ids in backed_per_category.items()})
    usual_currency = max(amounts, key=lambda c: len(amounts[c])) if amounts else None
    usual_pledge = int(np.median(amounts[usual_currency])) if usual_currency else None
    return BackerProfile(
        user_id=user.pk,
        category_counts=dict(categories),
        interests=interest_ids,
        usual_pledge=usual_pledge,
        usual_currency=usual_currency,
        risk_tolerance=tolerance,
        backed_campaign_ids=frozenset(open_campaigns),
    )


def live_campaign_pool(*, now: datetime | None = None) -> CampaignPool:
    """Return every campaign taking pledges now, with its latest risk score, as arrays.

    The pool may be reused (``live_campaign_pool_cached``): ranking drops campaigns whose
    deadline has passed since it was loaded.
    """
    now = now or timezone.now()
    live = Campaign.objects.open_for_pledges(now=now)
    rows = list(
        live.order_by("id").values_list(
            "id",
            "category_id",
            "goal",
            "pledged_amount",
            "backer_count",
            EpochSeconds("deadline"),
            "currency",
            "initiator_id",
        )
    )
    ids = [r[0] for r in rows]
    risk = _latest_probabilities(live)
    category_ids = np.array([r[1] for r in rows], dtype=np.int64)
    names = dict(Category.objects.filter(pk__in=set(category_ids.tolist())).values_list("pk", "name"))
    return CampaignPool(
        ids=np.array(ids, dtype=np.int64),
        category_ids=category_ids,
        goal=np.array([r[2] for r in rows], dtype=float),
        pledged=np.array([r[3] for r in rows], dtype=float),
        backers=np.array([r[4] for r in rows], dtype=float),
        deadlines=_seconds(r[5] for r in rows),
        risk=np.array([risk.get(i, UNASSESSED_RISK) for i in ids], dtype=float),
        currency=np.array([r[6] for r in rows], dtype="<U3"),
        initiator_ids=np.array([r[7] for r in rows], dtype=np.int64),
        category_names=names,
    )


def live_campaign_pool_cached(*, max_age: int = POOL_CACHE_SECONDS) -> CampaignPool:
    """Return the pool of live campaigns from the cache, loading it at most every ``max_age`` seconds.

    For pages that rank for every visitor: totals and risk scores may be that old. The cache
    is Django's (shared between processes when CACHE_URL points at Redis).
    """
    pool = cache.get(POOL_CACHE_KEY)
    if pool is None:
        pool = live_campaign_pool()
        cache.set(POOL_CACHE_KEY, pool, max_age)
    return pool


def _match_components(profile: BackerProfile, pool: CampaignPool, seconds_left: np.ndarray) -> np.ndarray:
    n = len(pool)
    components = np.empty((n, len(MATCH_COMPONENTS)))
    affinity = np.zeros(int(pool.category_ids.max(initial=0)) + 1)
    total = sum(profile.category_counts.values())
    for category_id, count in profile.category_counts.items():
        if category_id < affinity.size:
            affinity[category_id] += count / total
    for category_id in profile.interests:
        if category_id < affinity.size:
            affinity[category_id] += INTEREST_AFFINITY
    components[:, 0] = np.minimum(affinity[pool.category_ids], 1.0)
    components[:, 1] = 1.0 - (1.0 - profile.risk_tolerance) * pool.risk
    funded = pool.pledged / pool.goal
    # Campaigns close to their goal but not there yet are where a pledge matters most.
    components[:, 2] = np.where(funded < 1.0, funded, 0.5)
    components[:, 3] = np.exp(-np.maximum(seconds_left, 0.0) / (URGENCY_DAYS * DAY))
    components[:, 4] = np.log1p(pool.backers) / np.log1p(max(float(pool.backers.max(initial=0)), 1.0))
    if profile.usual_pledge:
        typical = pool.pledged / np.maximum(pool.backers, 1.0)
        comparable = (pool.currency == profile.usual_currency) & (pool.backers > 0) & (typical > 0)
        log_ratio = np.log(profile.usual_pledge / np.where(comparable, typical, 1.0))
        components[:, 5] = np.where(comparable, np.exp(-0.5 * log_ratio**2), 0.5)
    else:
        components[:, 5] = 0.5
    return components


def _reason(profile: BackerProfile, pool: CampaignPool, i: int, advantage: np.ndarray, seconds_left: float) -> str:
    """Say why campaign ``i`` ranks high; ``advantage`` is its contributions minus the pool's mean."""
    category_id = int(pool.category_ids[i])
    name = gettext(pool.category_names[category_id]) if category_id in pool.category_names else gettext("similar")
    count = profile.category_counts.get(category_id, 0)
    if count:
        return ngettext(
            "because you backed %(count)d %(category)s campaign",
            "because you backed %(count)d %(category)s campaigns",
            count,
        ) % {"count": count, "category": name}
    if category_id in profile.interests:
        return gettext("because you are interested in %(category)s") % {"category": name}
    strongest = MATCH_COMPONENTS[1 + int(np.argmax(advantage[1:]))]
    funded = int(pool.pledged[i] * 100 // pool.goal[i])
    if strongest == "urgency":
        hours = seconds_left / 3600
        if hours < 48:
            left = ngettext("%(count)d hour", "%(count)d hours", int(hours)) % {"count": int(hours)}
        else:
            left = ngettext("%(count)d day", "%(count)d days", int(hours // 24)) % {"count": int(hours // 24)}
        return gettext("ending in %(left)s, %(funded)d%% funded") % {"left": left, "funded": funded}
    if strongest == "progress":
        return gettext("%(funded)d%% funded and close to its goal") % {"funded": funded}
    if strongest == "popularity":
        backers = int(pool.backers[i])
        return ngettext("popular: %(count)d backer", "popular: %(count)d backers", backers) % {"count": backers}
    if strongest == "pledge_fit":
        return gettext("backers here pledge about what you usually do")
    return gettext("a low risk of failing (%(risk)d%%)") % {"risk": round(float(pool.risk[i]) * 100)}


def recommendations_rank(
    profile: BackerProfile, pool: CampaignPool, *, limit: int = 10, now: datetime | None = None
) -> list[Recommendation]:
    """Rank ``pool`` for ``profile`` without touching the database, best first.

    Left out: campaigns the backer already backs, their own, and those past their deadline.
    """
    if len(pool) == 0 or limit <= 0:
        return []
    seconds_left = pool.deadlines - (now or timezone.now()).timestamp()
    exclude = np.isin(pool.ids, np.fromiter(profile.backed_campaign_ids, dtype=np.int64)) | (seconds_left <= 0)
    if profile.user_id is not None:
        exclude |= pool.initiator_ids == profile.user_id
    components = _match_components(profile, pool, seconds_left)
    scores, contributions = score_recommendations(components, MATCH_WEIGHTS, exclude=exclude)
    advantage = contributions - contributions.mean(axis=0)
    return [
        Recommendation(
            campaign_id=int(pool.ids[i]),
            score=float(scores[i]),
            reason=_reason(profile, pool, i, advantage[i], float(seconds_left[i])),
        )
        for i in top_k(scores, limit)
    ]


def recommendations_for(
    user,
    limit: int = 10,
    *,
    interests: Iterable[Category | int] | None = None,
    risk_tolerance: float = DEFAULT_RISK_TOLERANCE,
    pool: CampaignPool | None = None,
) -> list[Recommendation]:
    """Return up to ``limit`` live campaigns for ``user``, best first, each with its reason and campaign.

    With no history and no interests (or an anonymous user) it is a cold start: popular campaigns
    and those ending soon. Pass ``pool`` (e.g. ``live_campaign_pool_cached()``) to rank many
    backers against one load of campaigns; by default the pool is loaded fresh.
    """
    profile = backer_profile_for(user, interests=interests, risk_tolerance=risk_tolerance)
    ranked = recommendations_rank(profile, pool if pool is not None else live_campaign_pool(), limit=limit)
    # The pool may be a minute old: a campaign that stopped taking pledges since is left out.
    campaigns = (
        Campaign.objects.filter(status=CampaignStatus.LIVE)
        .select_related("category", "initiator")
        .in_bulk([r.campaign_id for r in ranked])
    )
    return [
        Recommendation(campaign_id=r.campaign_id, score=r.score, reason=r.reason, campaign=campaigns.get(r.campaign_id))
        for r in ranked
    ]

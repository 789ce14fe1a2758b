"""Review risk: the review model's features for campaigns, their scores and latest assessments."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db.models import Q, QuerySet
from django.db.models.functions import Length
from django.utils import timezone

from projects.models import Campaign, CampaignStatus, RewardTier

from .. import review
from ..algorithms import LogisticModel
from ..models import RiskAssessment, RiskModelVersion
from .common import CLOSED_STATUSES, DAY, EpochSeconds, _chunks, _seconds, _unique_ids


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
            # Whole days: an unsubmitted campaign is measured as of now, and a fraction of a day
            # would make every re-scoring differ (and store a new assessment) for no reason.
            np.log1p(np.maximum(np.floor((as_of - joined) / DAY), 0.0)),
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

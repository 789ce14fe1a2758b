"""Recommendations: live campaigns ranked for a backer."""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from pledges.models import COUNTED_STATUSES, Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus, Category

from ..algorithms import score_recommendations, top_k
from .common import DAY, EpochSeconds, _seconds
from .review_risk import _latest_probabilities

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

"""A round's contributions and allocation, what it shares, and what a paid allocation still earns."""

from collections import defaultdict
from datetime import datetime

from django.db.models import F, Q, Sum
from django.utils import timezone

from pledges.models import COUNTED_STATUSES, Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus

from .. import allocation as math
from ..models import Allocation, AllocationOutcome, Pool, PoolMode, Round, RoundExclusion, RoundStatus
from .eligibility import CHALLENGE_WINDOW, eligible_campaigns
from .pools import PUBLISHED_ROUND_STATUSES, pool_balance

# Pledges that were held at some point: what a paid round counted, whatever happened since.
CHARGED_STATUSES = (PledgeStatus.HELD, PledgeStatus.RELEASED, PledgeStatus.REFUNDED, PledgeStatus.CANCELLED)


def round_public_get(*, round_id: int) -> Round | None:
    """Return a round of a funded pool (pool and sponsor loaded) with ``results`` if published, or None.

    ``results`` are its allocations (campaign loaded), largest first, once the round is published;
    empty before.
    """
    matching_round = (
        Round.objects.select_related("pool__sponsor").filter(pk=round_id, pool__funded_at__isnull=False).first()
    )
    if matching_round is None:
        return None
    matching_round.results = []
    if matching_round.status in PUBLISHED_ROUND_STATUSES:
        matching_round.results = list(matching_round.allocations.select_related("campaign").order_by("-amount", "pk"))
    return matching_round


def round_contributions(*, matching_round: Round, now: datetime | None = None):
    """Return the pledges that count in a round, as (campaign, backer, amount, pledge id) rows.

    Pledges held or released, in the pool's currency, made during the round, to eligible campaigns
    that will still be live when the challenge window ends (the money must reach their escrow
    before they settle), as of when the round ended; not those staff excluded.
    """
    now = now or matching_round.ended_at or timezone.now()
    pool = matching_round.pool
    campaigns = eligible_campaigns(pool=pool).filter(
        status=CampaignStatus.LIVE, deadline__gt=now + CHALLENGE_WINDOW, currency=pool.currency
    )
    return (
        Pledge.objects.filter(
            campaign__in=campaigns,
            status__in=COUNTED_STATUSES,
            currency=pool.currency,
            created_at__gte=matching_round.starts_at,
            created_at__lt=matching_round.ends_at,
        )
        .exclude(pk__in=RoundExclusion.objects.filter(round=matching_round).values("pledge_id"))
        .order_by("id")
        .values_list("campaign_id", "backer_id", "amount", "id")
    )


def round_compute(*, matching_round: Round, now: datetime | None = None) -> tuple[math.AllocationResult, dict]:
    """Return the round's allocation by the pool's mode, and per campaign (contributions, backers, raised)."""
    rows = list(round_contributions(matching_round=matching_round, now=now))
    initiators = _initiators({r[0] for r in rows})
    result = _allocate(matching_round.pool, rows, initiators, amount=round_budget(matching_round=matching_round))
    counts: dict[int, int] = defaultdict(int)
    backers: dict[int, set[int]] = defaultdict(set)
    raised: dict[int, int] = defaultdict(int)
    for campaign_id, backer_id, amount, _pledge_id in rows:
        if backer_id != initiators.get(campaign_id):
            counts[campaign_id] += 1
            backers[campaign_id].add(backer_id)
            raised[campaign_id] += amount
    stats = {cid: (counts[cid], len(backers[cid]), raised[cid]) for cid in result.allocations}
    return result, stats


def round_budget(*, matching_round: Round) -> int:
    """Return what a round shares: its frozen budget once ended, else what the pool can give it now.

    That is what the pool holds less what its other rounds that ended and are not yet paid are
    to take, never more than it holds: what one round leaves, or campaigns that failed gave
    back, goes to the pool's next round, and a pool with a roll-over from the sponsor's last one
    shares that too.
    """
    if matching_round.budget is not None:
        return matching_round.budget
    pending = (
        Allocation.objects.filter(
            round__pool_id=matching_round.pool_id, round__status__in=(RoundStatus.ENDED, RoundStatus.CHALLENGE)
        )
        .exclude(round_id=matching_round.pk)
        .aggregate(total=Sum("amount"))["total"]
        or 0
    )
    return max(pool_balance(pool=matching_round.pool) - pending, 0)


def _initiators(campaign_ids) -> dict[int, int]:
    return dict(Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", "initiator_id"))


def _allocate(pool: Pool, rows, initiators: dict[int, int], *, amount: int | None = None) -> math.AllocationResult:
    """Return the allocation of ``pool`` (or of ``amount``) over (campaign, backer, amount, sequence) rows."""
    contributions = (
        rows if isinstance(rows, math.Contributions) else math.Contributions.of(math.Contribution(*row) for row in rows)
    )
    excluded = {cid: {initiator} for cid, initiator in initiators.items()}
    total = pool.amount if amount is None else amount
    if pool.mode == PoolMode.FIXED_RATIO:
        return math.fixed_ratio(
            pool=total,
            contributions=contributions,
            ratio_bps=pool.ratio_bps,
            per_contribution_cap=pool.per_contribution_cap,
            per_backer_cap=pool.per_backer_cap,
            per_campaign_cap=pool.per_campaign_cap,
            excluded=excluded,
        )
    if pool.mode == PoolMode.PRO_RATA:
        return math.pro_rata(
            pool=total, contributions=contributions, per_campaign_cap=pool.per_campaign_cap, excluded=excluded
        )
    return math.quadratic(
        pool=total,
        contributions=contributions,
        per_campaign_cap=pool.per_campaign_cap,
        minimum=pool.minimum_contribution,
        excluded=excluded,
        pairwise_damping=pool.pairwise_damping,
    )


def round_published_get(*, pool: Pool, round_id: int) -> Round | None:
    """Return a round of ``pool`` whose results are published, or None."""
    return pool.rounds.filter(pk=round_id, status__in=PUBLISHED_ROUND_STATUSES).first()


def round_inputs(*, matching_round: Round):
    """Return the contributions behind a round's published allocations, for its CSV.

    One row per pledge made in the round to a campaign it matched: (pledge id, campaign id,
    backer id, amount, created at, initiator?, excluded?); backers are pseudonymised by the view.
    """
    pool = matching_round.pool
    campaign_ids = matching_round.allocations.values("campaign_id")
    excluded = set(matching_round.exclusions.values_list("pledge_id", flat=True))
    rows = (
        Pledge.objects.filter(
            campaign_id__in=campaign_ids,
            status__in=COUNTED_STATUSES,
            currency=pool.currency,
            created_at__gte=matching_round.starts_at,
            created_at__lt=matching_round.ends_at,
        )
        .order_by("campaign_id", "id")
        .values_list("pk", "campaign_id", "backer_id", "amount", "created_at", "campaign__initiator_id")
    )
    return [
        (pk, campaign_id, backer_id, amount, created_at, backer_id == initiator_id, pk in excluded)
        for pk, campaign_id, backer_id, amount, created_at, initiator_id in rows
    ]


def allocation_earned(*, allocation: Allocation) -> int:
    """Return how much of a paid allocation its campaign still earns when it settles.

    Matched money follows the pledges it matched: the round is computed again with this
    campaign's pledges as they count now (one cancelled or refunded since the round was paid no
    longer does) and every other paid campaign's as they were when paid (every charged pledge,
    whatever happened to it since), and the campaign earns the smaller of what it was paid and
    what it would get. Once the campaign is closing its pledges no longer change, so the answer
    is the same for the fee computed before settlement's last transaction and the release in it.
    """
    matching_round = allocation.round
    pool = matching_round.pool
    others = matching_round.allocations.filter(paid_at__isnull=False).exclude(pk=allocation.pk)
    rows = list(
        Pledge.objects.filter(
            Q(campaign_id=allocation.campaign_id, status__in=COUNTED_STATUSES)
            | Q(campaign_id__in=others.values("campaign_id"), status__in=CHARGED_STATUSES),
            currency=pool.currency,
            created_at__gte=matching_round.starts_at,
            created_at__lt=matching_round.ends_at,
        )
        .exclude(pk__in=RoundExclusion.objects.filter(round=matching_round).values("pledge_id"))
        .order_by("id")
        .values_list("campaign_id", "backer_id", "amount", "id")
    )
    if not any(row[0] == allocation.campaign_id for row in rows):
        return 0
    now = _allocate(
        pool, rows, _initiators({row[0] for row in rows}), amount=round_budget(matching_round=matching_round)
    ).allocations.get(allocation.campaign_id, 0)
    return min(allocation.amount, now)


def campaign_matched_to_release(*, campaign_id: int) -> int:
    """Return the matched money a succeeding campaign releases: what it still earns, or released already."""
    unsettled = Allocation.objects.filter(campaign_id=campaign_id, paid_at__isnull=False, settled_at__isnull=True)
    earned = sum(allocation_earned(allocation=a) for a in unsettled.select_related("round__pool"))
    released = Allocation.objects.filter(campaign_id=campaign_id, outcome=AllocationOutcome.RELEASED).aggregate(
        t=Sum(F("amount") - F("returned_amount"))
    )["t"]
    return earned + (released or 0)

"""The live estimate: an open round's cached standing, its live table, and what a gift adds."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone

from projects.models import Campaign

from .. import allocation as math
from ..models import Pool, PoolMode, Round, RoundStatus
from .eligibility import _eligible_now, _rounds_open_for
from .rounds import _allocate, _initiators, round_budget, round_contributions


@dataclass(frozen=True)
class MatchEstimate:
    pool: Pool
    low: int
    high: int


# Where a round's standing is kept for the live estimate, and for how long a copy is used.
_STANDING_KEY = "matching:standing:{round_id}"


def round_standing(*, matching_round: Round, now: datetime | None = None, fresh: bool = False) -> math.Standing:
    """Return the round's standing for the live estimate: one number per campaign, from the cache.

    Computing it reads every contribution of the round and runs the allocation on them and on
    their copies, so it is kept for ``MATCHING_STANDING_SECONDS`` (and refreshed by beat before
    it expires); ``fresh`` computes it again whatever is cached. Estimates use it only for the
    other campaigns: the one given to is read as it is now.
    """
    key = _STANDING_KEY.format(round_id=matching_round.pk)
    if not fresh:
        standing = cache.get(key)
        if standing is not None:
            return standing
    rows = list(round_contributions(matching_round=matching_round, now=now or timezone.now()))
    standing = standing_of(
        pool=matching_round.pool,
        contributions=math.Contributions.of(math.Contribution(*row) for row in rows),
        initiators=_initiators({r[0] for r in rows}),
        budget=round_budget(matching_round=matching_round),
    )
    cache.set(key, standing, settings.MATCHING_STANDING_SECONDS)
    return standing


def standing_of(
    *, pool: Pool, contributions: math.Contributions, initiators: dict[int, int], budget: int | None = None
) -> math.Standing:
    """Return the standing of a round of ``pool`` sharing ``budget`` (the pool's amount) (no database)."""
    budget = pool.amount if budget is None else budget
    # The copies' ids are above every backer's and initiator's, so a copy is never taken for either.
    offset = max(math.copies_offset(contributions), max(initiators.values(), default=0) + 1)
    copies = math.doubled(contributions, offset)
    excluded = {cid: {initiator} for cid, initiator in initiators.items()}
    totals = {
        "raised": math.raised_by_campaign(contributions, excluded=excluded),
        "backers": math.backers_by_campaign(contributions, excluded=excluded),
    }
    if pool.mode == PoolMode.FIXED_RATIO:
        now_result = _allocate(pool, contributions, initiators, amount=budget)
        doubled_result = _allocate(pool, copies, initiators, amount=budget)
        return math.Standing(
            now=now_result.allocations,
            doubled=doubled_result.allocations,
            offset=offset,
            budget=budget,
            left=now_result.left,
            left_doubled=doubled_result.left,
            **totals,
        )
    return math.Standing(
        now=_weights(pool, contributions, initiators),
        doubled=_weights(pool, copies, initiators),
        offset=offset,
        budget=budget,
        **totals,
    )


@dataclass(frozen=True)
class LiveRow:
    campaign: Campaign
    backers: int
    raised: int
    match: int
    capped: bool


@dataclass(frozen=True)
class LiveRound:
    round: Round
    rows: list
    # What the round shares, what it would give if it ended now, and what would be left.
    budget: int
    matched: int
    left: int


def round_live_table(*, matching_round: Round, now: datetime | None = None) -> LiveRound:
    """Return an open round's live allocation: each campaign's backers, raised and match if it ended now.

    From the round's cached standing (``round_standing``), the one the estimates use, so it is
    as fresh as they are; one query for the campaigns' titles and links. Largest match first.
    """
    pool = matching_round.pool
    standing = round_standing(matching_round=matching_round, now=now)
    if pool.mode == PoolMode.FIXED_RATIO:
        matches = dict(standing.now)
    else:
        matches = math.split_capped(pool=standing.budget, weights=standing.now, cap=pool.per_campaign_cap)
    raised, backers = standing.raised or {}, standing.backers or {}
    ids = set(matches) | set(raised)
    campaigns = Campaign.objects.filter(pk__in=ids).only("pk", "slug", "title").in_bulk() if ids else {}
    cap = pool.per_campaign_cap
    rows = sorted(
        (
            LiveRow(
                campaign=campaigns[cid],
                backers=backers.get(cid, 0),
                raised=raised.get(cid, 0),
                match=matches.get(cid, 0),
                capped=cap is not None and matches.get(cid, 0) >= cap,
            )
            for cid in ids
            if cid in campaigns
        ),
        key=lambda row: (-row.match, -row.raised, row.campaign.pk),
    )
    matched = sum(matches.values())
    return LiveRound(
        round=matching_round, rows=rows, budget=standing.budget, matched=matched, left=standing.budget - matched
    )


def open_rounds_refresh_standing(*, now: datetime | None = None) -> int:
    """Compute again the standing of every open round (beat does, so estimates never wait); return how many."""
    now = now or timezone.now()
    rounds = Round.objects.filter(status=RoundStatus.OPEN, starts_at__lte=now, ends_at__gt=now).select_related("pool")
    count = 0
    for matching_round in rounds:
        round_standing(matching_round=matching_round, now=now, fresh=True)
        count += 1
    return count


def _weights(pool: Pool, contributions: math.Contributions, initiators: dict[int, int], *, damped: bool = True):
    """Return each campaign's weight by the pool's mode: raised (pro rata) or quadratic."""
    excluded = {cid: {initiator} for cid, initiator in initiators.items()}
    if pool.mode == PoolMode.PRO_RATA:
        return math.raised_by_campaign(contributions, excluded=excluded)
    return math.quadratic_weights(
        contributions,
        minimum=pool.minimum_contribution,
        excluded=excluded,
        pairwise_damping=pool.pairwise_damping if damped else None,
    )


def match_estimates(
    *, campaign: Campaign, amount: int, backer_id: int | None = None, round_ids: list[int] | None = None
) -> list[MatchEstimate]:
    """Return what giving ``amount`` to ``campaign`` now would add to its match, per open round, as a range.

    ``high`` is the match it adds if the round ended now; ``low`` is what it adds if as much
    again were given by as many others before the round ends (each contribution repeated by a
    new backer), since matching can fall as others give. A backer who already gave is counted
    as giving more (their gifts are added up before the square root).

    Giving to one campaign changes only its own weight (or, by fixed ratio, only the gift's
    match), so the campaign is read as it is now (its own contributions, one query per open
    round) and the rest of the round comes from its cached standing (``round_standing``): the
    split of the pool is then the exact one the round's end runs, over one weight per campaign.
    With pairwise damping, a weight depends on what its backers gave together elsewhere too:
    the campaign's weight comes from the standing and the gift adds to it what it adds to the
    campaign's pairs damped by their gifts to this campaign: exact for a giver new to the round.
    One who also gave elsewhere with the same backers damps those campaigns' pairs too, which
    lifts this campaign's share; the estimate leaves that out and is then on the low side.
    ``round_ids``: the open rounds that match the campaign if already read (``campaign_matching_line``).
    """
    now = timezone.now()
    if not _eligible_now(campaign.currency, campaign, now):
        return []
    if round_ids is None:
        rounds = _rounds_open_for(campaign, now)
    elif round_ids:
        rounds = Round.objects.filter(pk__in=round_ids, status=RoundStatus.OPEN)
    else:
        return []
    rounds = rounds.select_related("pool").order_by("pk")
    estimates = []
    for matching_round in rounds:
        rows = _campaign_contributions(matching_round, campaign.pk, now)
        if backer_id == campaign.initiator_id:
            estimates.append(MatchEstimate(pool=matching_round.pool, low=0, high=0))
            continue
        low, high = gift_estimate(
            pool=matching_round.pool,
            standing=round_standing(matching_round=matching_round, now=now),
            mine=math.Contributions.of(math.Contribution(*row) for row in rows),
            campaign_id=campaign.pk,
            initiator_id=campaign.initiator_id,
            giver=backer_id if backer_id is not None else -1,  # -1: a backer not in the round
            amount=amount,
        )
        estimates.append(MatchEstimate(pool=matching_round.pool, low=low, high=high))
    return estimates


def _campaign_contributions(matching_round: Round, campaign_id: int, now: datetime) -> list[tuple[int, int, int, int]]:
    """Return what counts of one campaign's contributions in a round, as few rows as its mode needs.

    Fixed ratio takes each contribution in turn; pro rata and quadratic funding only need each
    backer's total (quadratic: of the contributions over the minimum), added up by the database.
    """
    rows = round_contributions(matching_round=matching_round, now=now).filter(campaign_id=campaign_id)
    pool = matching_round.pool
    if pool.mode == PoolMode.FIXED_RATIO:
        return list(rows)
    if pool.mode == PoolMode.QUADRATIC:
        rows = rows.filter(amount__gte=pool.minimum_contribution)
    totals = rows.order_by().values("backer_id").annotate(total=Sum("amount")).values_list("backer_id", "total")
    return [(campaign_id, backer_id, total, 0) for backer_id, total in totals]


def gift_estimate(
    *,
    pool: Pool,
    standing: math.Standing,
    mine: math.Contributions,
    campaign_id: int,
    initiator_id: int,
    giver: int,
    amount: int,
) -> tuple[int, int]:
    """Return (low, high): what ``giver`` giving ``amount`` adds, over the campaign's own contributions ``mine``."""
    offset = max(standing.offset, math.copies_offset(mine), giver + 1, initiator_id + 1)
    initiators = {campaign_id: initiator_id}
    high, low = (
        _gift_adds(pool, standing, scenario, rows, campaign_id, giver, amount, initiators)
        for scenario, rows in (("now", mine), ("doubled", math.doubled(mine, offset)))
    )
    return min(low, high), max(low, high)


def _gift_adds(pool, standing, scenario, mine, campaign_id, giver, amount, initiators) -> int:
    """Return what the gift adds to the campaign's match in one scenario of the standing."""
    gift = math.with_gift(mine, campaign_id=campaign_id, backer_id=giver, amount=amount)
    others = standing.now if scenario == "now" else standing.doubled
    if pool.mode == PoolMode.FIXED_RATIO:
        # The campaign's matches by its own caps; the pool's limit is ``left``, below.
        before = _allocate(pool, mine, initiators, amount=2**62).allocations.get(campaign_id, 0) if len(mine) else 0
        after = _allocate(pool, gift, initiators, amount=2**62).allocations.get(campaign_id, 0)
        left = standing.left if scenario == "now" else standing.left_doubled
        left += others.get(campaign_id, 0) - before
        return max(min(after - before, left), 0)
    if pool.pairwise_damping is not None:
        # The campaign's own contributions give its pairs' damping within it; the standing adds
        # what its backers' pairs gave together elsewhere.
        weight_before = others.get(campaign_id, 0)
        own_before = _weights(pool, mine, initiators).get(campaign_id, 0) if len(mine) else 0
        weight_after = weight_before + _weights(pool, gift, initiators).get(campaign_id, 0) - own_before
    else:
        weight_before = _weights(pool, mine, initiators).get(campaign_id, 0) if len(mine) else 0
        weight_after = _weights(pool, gift, initiators).get(campaign_id, 0)
    weights = dict(others)
    weights[campaign_id] = weight_before
    before = math.split_capped(pool=standing.budget, weights=weights, cap=pool.per_campaign_cap).get(campaign_id, 0)
    weights[campaign_id] = weight_after
    after = math.split_capped(pool=standing.budget, weights=weights, cap=pool.per_campaign_cap).get(campaign_id, 0)
    return max(after - before, 0)

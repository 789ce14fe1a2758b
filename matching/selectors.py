"""Matching reads: pools' balances, rounds' contributions and allocations, a campaign's matches.

The services freeze and pay what ``round_compute`` returns; pages and the API show the rest.
"""

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, CharField, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from escrow.ledger import account_balance, account_balances, ledger_accounts_get_or_create
from escrow.vocabulary import pool_deposit_account_specs, pool_funds_code
from pledges.models import COUNTED_STATUSES, Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus, FundingModel

from . import allocation as math
from .models import Allocation, AllocationOutcome, Pool, PoolMode, PoolStatus, Round, RoundExclusion, RoundStatus

CHALLENGE_WINDOW = timedelta(days=3)
# Pledges that were held at some point: what a paid round counted, whatever happened since.
CHARGED_STATUSES = (PledgeStatus.HELD, PledgeStatus.RELEASED, PledgeStatus.REFUNDED, PledgeStatus.CANCELLED)

# Rounds whose results are frozen and may be shown (and, once paid, are money in escrow).
PUBLISHED_ROUND_STATUSES = (RoundStatus.CHALLENGE, RoundStatus.PAID)


def pool_public_get(*, slug: str) -> Pool | None:
    """Return a funded pool for its public page (sponsor loaded), or None."""
    return Pool.objects.select_related("sponsor").filter(slug=slug, funded_at__isnull=False).first()


def pools_public(*, status: str | None = None, now: datetime | None = None) -> QuerySet[Pool]:
    """Return the funded pools, newest first, each annotated with its ``status`` (``PoolStatus``).

    ``status`` keeps only the pools in that state; the same expression says it and filters it.
    """
    now = now or timezone.now()
    pools = (
        Pool.objects.filter(funded_at__isnull=False)
        .select_related("sponsor")
        .annotate(
            status=Case(
                When(closed_at__isnull=False, then=Value(PoolStatus.CLOSED.value)),
                When(starts_at__gt=now, then=Value(PoolStatus.UPCOMING.value)),
                When(ends_at__gt=now, then=Value(PoolStatus.RUNNING.value)),
                default=Value(PoolStatus.ENDED.value),
                output_field=CharField(),
            )
        )
    )
    if status is not None:
        pools = pools.filter(status=status)
    return pools


# The public index's order: pools one can be matched by now, then those to come, then the past.
_INDEX_RANK = Case(
    When(status=PoolStatus.RUNNING.value, then=Value(0)),
    When(status=PoolStatus.UPCOMING.value, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def pools_index(*, now: datetime | None = None) -> QuerySet[Pool]:
    """Return ``pools_public`` running first, then upcoming, then ended or closed, newest first in each.

    Each pool has ``matched_campaigns``: how many campaigns its paid rounds matched (as
    ``pool_dashboard`` counts them), from a subquery, so a page of pools is one query.
    """
    matched = (
        Allocation.objects.filter(
            round__pool=OuterRef("pk"), round__status__in=PUBLISHED_ROUND_STATUSES, paid_at__isnull=False
        )
        .values("round__pool")
        .annotate(n=Count("campaign_id", distinct=True))
        .values("n")
    )
    return (
        pools_public(now=now)
        .annotate(rank=_INDEX_RANK, matched_campaigns=Coalesce(Subquery(matched), 0))
        .order_by("rank", "-created_at", "-id")
    )


def sponsor_get(*, username: str):
    """Return the active user ``username`` (whether they may sponsor is ``pool_create``'s to say), or None."""
    return get_user_model().objects.filter(username=username, is_active=True).first()


def pool_balances(*, pools) -> dict[int, int]:
    """Return {pool id: what its ledger account holds now} for ``pools``, in one query."""
    pools = list(pools)
    balances = account_balances(codes=[pool_funds_code(p.pk) for p in pools])
    return {p.pk: balances.get((pool_funds_code(p.pk), p.currency), 0) for p in pools}


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


def pool_rounds_with_results(*, pool: Pool) -> list[Round]:
    """Return the pool's rounds, newest first, each published one with ``results`` (campaign loaded).

    The round open now has ``live`` too (``round_live_table``: from its cached standing, one
    query for its campaigns); the others have None. Two queries whatever the number of rounds
    and campaigns, one more for the open one.
    """
    now = timezone.now()
    rounds = list(pool.rounds.all())
    for matching_round in rounds:
        is_open = matching_round.status == RoundStatus.OPEN and matching_round.starts_at <= now < matching_round.ends_at
        matching_round.live = round_live_table(matching_round=matching_round, now=now) if is_open else None
    published = [r.pk for r in rounds if r.status in PUBLISHED_ROUND_STATUSES]
    by_round: dict[int, list[Allocation]] = {}
    if published:
        for allocation in (
            Allocation.objects.filter(round_id__in=published).select_related("campaign").order_by("-amount", "pk")
        ):
            by_round.setdefault(allocation.round_id, []).append(allocation)
    for matching_round in rounds:
        matching_round.results = by_round.get(matching_round.pk, [])
    return rounds


@dataclass(frozen=True)
class CampaignMatch:
    pool_name: str
    pool_slug: str
    sponsor_name: str
    amount: int
    currency: str


def campaign_matched_by(*, campaign_id: int) -> list[CampaignMatch]:
    """Return who matched a campaign and how much, from published rounds (``campaigns_matched_by``)."""
    return campaigns_matched_by(campaign_ids=[campaign_id]).get(campaign_id, [])


@dataclass(frozen=True)
class MatchingLine:
    # Who matched the campaign, from published rounds (``campaigns_matched_by``).
    matches: list
    # The rounds open now that match it, for its live estimate (``match_estimates``).
    open_round_ids: list


# Stands in the campaign column for the rows of open rounds in the line's one query (see below).
_OPEN_ROUND_ROW = -1


def campaign_matching_line(*, campaign: Campaign) -> MatchingLine:
    """Return what a campaign page's "matched by" line needs: published matches and open rounds.

    One query, as before there were live estimates: the campaign's allocations, and for a
    campaign that could be matched now (live, not a loan, far from its deadline: a check of its
    own fields) the rounds open now that match it, in the same statement (``_line_sql``). So
    the page of a campaign in no round pays no query, and no cache read, for rounds; more
    queries only when it has allocations (``_matches_of``) or is in an open round (its estimate).
    """
    now = timezone.now()
    if _eligible_now(campaign.currency, campaign, now):
        at = connection.ops.adapt_datetimefield_value(now)
        sql, params = (
            _line_sql(with_rounds=True),
            [
                campaign.pk,
                RoundStatus.OPEN,
                at,
                at,
                campaign.currency,
                campaign.initiator_id,
                campaign.category_id,
                campaign.pk,
            ],
        )
    else:
        sql, params = _line_sql(with_rounds=False), [campaign.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return MatchingLine(
        matches=_matches_of([row for row in rows if row[0] != _OPEN_ROUND_ROW]).get(campaign.pk, []),
        open_round_ids=sorted({row[1] for row in rows if row[0] == _OPEN_ROUND_ROW}),
    )


@functools.cache
def _line_sql(*, with_rounds: bool) -> str:
    """Return the matching line's statement: the allocations, and (``with_rounds``) the open rounds.

    Hand-written because the campaign page's budget needs it: the ORM compiling the same UNION
    cost several times the page's old allocations query (benchmarks/README.md, "the matching
    line with live estimates"). It stands for
        Allocation.objects.filter(campaign_id=c.pk).values_list(
            "campaign_id", "round_id", "amount", "returned_amount", "outcome")
        .union(_rounds_open_for(c, now).values_list(Value(-1), "pk", Value(0), Value(0), Value("")), all=True)
    Names come from the models' meta, so a renamed column fails the tests, on both databases.
    """
    allocation, round_, pool = Allocation._meta, Round._meta, Pool._meta
    by_category, by_list = Pool.categories.through._meta, Pool.campaigns.through._meta

    def col(meta, name):
        return connection.ops.quote_name(meta.get_field(name).column)

    def table(meta):
        return connection.ops.quote_name(meta.db_table)

    sql = (
        f"SELECT {col(allocation, 'campaign')}, {col(allocation, 'round')}, {col(allocation, 'amount')}, "  # noqa: S608
        f"{col(allocation, 'returned_amount')}, {col(allocation, 'outcome')} "
        f"FROM {table(allocation)} WHERE {col(allocation, 'campaign')} = %s"
    )
    if not with_rounds:
        return sql
    # Names only in the f-strings below; every value is a parameter.
    return (
        f"{sql} UNION ALL SELECT {_OPEN_ROUND_ROW}, r.{col(round_, 'id')}, 0, 0, '' "  # noqa: S608
        f"FROM {table(round_)} r INNER JOIN {table(pool)} p ON p.{col(pool, 'id')} = r.{col(round_, 'pool')} "
        f"WHERE r.{col(round_, 'status')} = %s AND r.{col(round_, 'starts_at')} <= %s "
        f"AND r.{col(round_, 'ends_at')} > %s AND p.{col(pool, 'funded_at')} IS NOT NULL "
        f"AND p.{col(pool, 'currency')} = %s AND p.{col(pool, 'sponsor')} <> %s "
        f"AND (EXISTS (SELECT 1 FROM {table(by_category)} pc WHERE pc.{col(by_category, 'pool')} = p.{col(pool, 'id')} "
        f"AND pc.{col(by_category, 'category')} = %s) "
        f"OR EXISTS (SELECT 1 FROM {table(by_list)} pm WHERE pm.{col(by_list, 'pool')} = p.{col(pool, 'id')} "
        f"AND pm.{col(by_list, 'campaign')} = %s))"
    )


def _allocation_rows(campaign_ids):
    return (
        Allocation.objects.filter(campaign_id__in=list(campaign_ids))
        .order_by()
        .values_list("campaign_id", "round_id", "amount", "returned_amount", "outcome")
    )


def campaigns_matched_by(*, campaign_ids) -> dict[int, list[CampaignMatch]]:
    """Return who matched each of ``campaign_ids`` and how much, from published rounds; unmatched ones are left out.

    Allocations not paid, or returned to the pool when the campaign failed, are left out; each
    campaign's matches are largest first. One query on the allocation table alone when none of
    the campaigns was ever allocated anything (most campaigns, on every campaign page and card),
    and one more for the rounds, pools and sponsors when some were.
    """
    return _matches_of(list(_allocation_rows(campaign_ids)))


def _matches_of(allocations) -> dict[int, list[CampaignMatch]]:
    """Return the matches of (campaign, round, amount, returned, outcome) allocation rows (one query, if any)."""
    rows = [
        (campaign_id, round_id, amount - returned)
        for campaign_id, round_id, amount, returned, outcome in allocations
        if outcome not in (AllocationOutcome.NOT_PAID, AllocationOutcome.RETURNED)
    ]
    if not rows:
        return {}
    rounds = Round.objects.filter(pk__in={row[1] for row in rows}, status__in=PUBLISHED_ROUND_STATUSES)
    pools = {r.pk: r.pool for r in rounds.select_related("pool__sponsor")}
    totals: dict[int, dict[Pool, int]] = defaultdict(lambda: defaultdict(int))
    for campaign_id, round_id, amount in rows:
        if round_id in pools:
            totals[campaign_id][pools[round_id]] += amount
    return {
        campaign_id: [
            CampaignMatch(
                pool_name=pool.name,
                pool_slug=pool.slug,
                sponsor_name=pool.sponsor.display_name or pool.sponsor.username,
                amount=total,
                currency=pool.currency,
            )
            for pool, total in sorted(by_pool.items(), key=lambda item: (-item[1], item[0].slug))
            if total > 0
        ]
        for campaign_id, by_pool in totals.items()
        if any(total > 0 for total in by_pool.values())
    }


def pool_balance(*, pool: Pool) -> int:
    """Return what the pool's ledger account holds now."""
    accounts = ledger_accounts_get_or_create(
        specs=pool_deposit_account_specs(sponsor_id=pool.sponsor_id, pool_id=pool.pk), currency=pool.currency
    )
    return account_balance(account=accounts[pool_funds_code(pool.pk)])


def eligible_campaigns(*, pool: Pool):
    """Return the campaigns a pool matches: its categories or its list, never the sponsor's own.

    Debt campaigns are never matched: their money is a loan repaid to its lenders, and a sponsor
    is not one of them.
    """
    campaigns = Campaign.objects.filter(Q(category__in=pool.categories.all()) | Q(pk__in=pool.campaigns.all()))
    return campaigns.exclude(initiator_id=pool.sponsor_id).exclude(funding_model=FundingModel.DEBT)


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


def _rounds_open_for(campaign: Campaign, now: datetime):
    """Return the rounds open now whose funded pool, in the campaign's currency, matches it.

    A pool's category or list, never its sponsor's own campaign: what ``eligible_campaigns``
    says, from the campaign's side.
    """
    pools = Pool.objects.filter(
        Q(categories=campaign.category_id) | Q(campaigns=campaign.pk),
        funded_at__isnull=False,
        currency=campaign.currency,
    ).exclude(sponsor_id=campaign.initiator_id)
    return Round.objects.filter(status=RoundStatus.OPEN, starts_at__lte=now, ends_at__gt=now, pool__in=pools)


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


def _eligible_now(currency: str, campaign: Campaign, now: datetime) -> bool:
    # As ``round_contributions`` filters the campaigns (``eligible_campaigns`` and the window).
    return (
        campaign.status == CampaignStatus.LIVE
        and campaign.funding_model != FundingModel.DEBT
        and campaign.currency == currency
        and campaign.deadline is not None
        and campaign.deadline > now + CHALLENGE_WINDOW
    )


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


@dataclass(frozen=True)
class ChartBar:
    key: str
    amount: int
    # Of the widest bar, in per cent (for the bar's width).
    percent: int


@dataclass(frozen=True)
class PoolDashboard:
    deposited: int
    rolled_in: int
    left: int
    paid: int
    kept: int
    returned: int
    contributions: int
    campaigns: int
    rounds: list
    # Where the money went, as bars: put in, paid, kept, back, left.
    chart: list
    # The sponsor's other pools that could take what is left (same currency, funded, open).
    next_pools: list


def pool_dashboard(*, pool: Pool) -> PoolDashboard:
    """Return a sponsor's view of their pool: money in, paid, kept, back, left, and who it reached."""
    allocations = Allocation.objects.filter(round__pool=pool, round__status__in=PUBLISHED_ROUND_STATUSES)
    totals = allocations.filter(paid_at__isnull=False).aggregate(
        paid=Sum("amount"), returned=Sum("returned_amount"), contributions=Sum("contributions")
    )
    paid, returned = totals["paid"] or 0, totals["returned"] or 0
    deposited = pool.amount if pool.funded_at else 0
    rolled_in = (
        Pool.objects.filter(next_pool=pool, leftover_returned_at__isnull=False).aggregate(t=Sum("leftover"))["t"] or 0
    )
    left = pool_balance(pool=pool)
    amounts = {
        "deposited": deposited + rolled_in,
        "paid": paid,
        "kept": paid - returned,
        "returned": returned,
        "left": left,
    }
    widest = max(amounts.values()) or 1
    return PoolDashboard(
        deposited=deposited,
        rolled_in=rolled_in,
        left=left,
        paid=paid,
        kept=paid - returned,
        returned=returned,
        contributions=totals["contributions"] or 0,
        campaigns=allocations.filter(paid_at__isnull=False).values("campaign_id").distinct().count(),
        rounds=pool_rounds_with_results(pool=pool),
        chart=[ChartBar(key=key, amount=amount, percent=amount * 100 // widest) for key, amount in amounts.items()],
        next_pools=list(
            Pool.objects.filter(
                sponsor_id=pool.sponsor_id, currency=pool.currency, funded_at__isnull=False, closed_at__isnull=True
            ).exclude(pk=pool.pk)
        ),
    )


@dataclass(frozen=True)
class ReviewContribution:
    pledge: Pledge
    # Why staff excluded it, or None while it counts.
    excluded_reason: str | None
    # How old the backer's account was when they gave.
    account_age: timedelta


def round_contributions_for_review(*, matching_round: Round):
    """Return a round's contributions for staff to challenge: those that count and those excluded.

    Each with its backer and campaign loaded, by campaign, then oldest first; the caller pages it
    (a list of ``ReviewContribution`` per page through ``review_contributions_of``).
    """
    exclusions = matching_round.exclusions.values("pledge_id")
    counted = round_contributions(matching_round=matching_round).values("id")
    return (
        Pledge.objects.filter(Q(pk__in=counted) | Q(pk__in=exclusions))
        .select_related("backer", "campaign")
        .order_by("campaign_id", "created_at", "pk")
    )


def review_contributions_of(*, matching_round: Round, pledges) -> list[ReviewContribution]:
    """Return ``pledges`` (one page of ``round_contributions_for_review``) with their exclusion and account age."""
    pledges = list(pledges)
    reasons = dict(
        matching_round.exclusions.filter(pledge_id__in=[p.pk for p in pledges]).values_list("pledge_id", "reason")
    )
    return [
        ReviewContribution(
            pledge=pledge,
            excluded_reason=reasons.get(pledge.pk),
            account_age=max(pledge.created_at - pledge.backer.date_joined, timedelta(0)),
        )
        for pledge in pledges
    ]

"""A campaign's "matched by" line: who matched it, and the rounds open now that match it."""

import functools
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from projects.models import Campaign

from ..models import Allocation, AllocationOutcome, Pool, Round, RoundStatus
from .eligibility import _eligible_now
from .pools import PUBLISHED_ROUND_STATUSES


@dataclass(frozen=True)
class CampaignMatch:
    pool_name: str
    pool_slug: str
    sponsor_name: str
    amount: int
    currency: str
    # The pool's logo descriptor (``Pool.logo``), empty for none.
    pool_logo: dict


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
                pool_logo=pool.logo,
            )
            for pool, total in sorted(by_pool.items(), key=lambda item: (-item[1], item[0].slug))
            if total > 0
        ]
        for campaign_id, by_pool in totals.items()
        if any(total > 0 for total in by_pool.values())
    }

"""A sponsor's dashboard of their pool and the pool page's rounds with their results."""

from dataclasses import dataclass

from django.db.models import Sum
from django.utils import timezone

from ..models import Allocation, Pool, Round, RoundStatus
from .estimates import round_live_table
from .pools import PUBLISHED_ROUND_STATUSES, pool_balance


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

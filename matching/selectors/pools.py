"""Pools for pages and the API: the public ones, their index order, their ledger balances."""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Case, CharField, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from escrow.ledger import account_balance, account_balances, ledger_accounts_get_or_create
from escrow.vocabulary import pool_deposit_account_specs, pool_funds_code

from ..models import SPONSORS_GROUP, Allocation, Pool, PoolStatus, RoundStatus

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


def user_may_sponsor(*, user) -> bool:
    """Return whether ``user`` may put up pools of their own: an active member of the Sponsors group."""
    return (
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.groups.filter(name=SPONSORS_GROUP).exists()
    )


def user_may_act_for(*, user, sponsor_id: int) -> bool:
    """Return whether ``user`` may act for the sponsor ``sponsor_id``: the sponsor themself, or active staff.

    The one rule of who manages a pool (rounds, logo, leftover, closing, its dashboard). A public
    pool someone may not manage is a 403 for them, not a 404: that it exists is no secret.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.pk == sponsor_id or user.is_staff or user.is_superuser


def sponsor_get(*, username: str):
    """Return the active user ``username`` (whether they may sponsor is ``pool_create``'s to say), or None."""
    return get_user_model().objects.filter(username=username, is_active=True).first()


def pool_balances(*, pools) -> dict[int, int]:
    """Return {pool id: what its ledger account holds now} for ``pools``, in one query."""
    pools = list(pools)
    balances = account_balances(codes=[pool_funds_code(p.pk) for p in pools])
    return {p.pk: balances.get((pool_funds_code(p.pk), p.currency), 0) for p in pools}


def pool_balance(*, pool: Pool) -> int:
    """Return what the pool's ledger account holds now."""
    accounts = ledger_accounts_get_or_create(
        specs=pool_deposit_account_specs(sponsor_id=pool.sponsor_id, pool_id=pool.pk), currency=pool.currency
    )
    return account_balance(account=accounts[pool_funds_code(pool.pk)])

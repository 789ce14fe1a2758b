"""Matching reads for pages and the API: public pools, their rounds' results, a campaign's matches."""

from dataclasses import dataclass

from django.db.models import Sum

from .models import Allocation, AllocationOutcome, Pool, Round, RoundStatus

# Rounds whose results are frozen and may be shown (and, once paid, are money in escrow).
PUBLISHED_ROUND_STATUSES = (RoundStatus.CHALLENGE, RoundStatus.PAID)


def pool_public_get(*, slug: str) -> Pool | None:
    """Return a funded pool for its public page (sponsor loaded), or None."""
    return Pool.objects.select_related("sponsor").filter(slug=slug, funded_at__isnull=False).first()


def pool_rounds_with_results(*, pool: Pool) -> list[Round]:
    """Return the pool's rounds, newest first, each published one with ``results`` (campaign loaded).

    Two queries whatever the number of rounds and campaigns.
    """
    rounds = list(pool.rounds.all())
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
    """Return who matched a campaign and how much, from published rounds (one query).

    Allocations not paid, or returned to the pool when the campaign failed, are left out.
    """
    rows = (
        Allocation.objects.filter(campaign_id=campaign_id, round__status__in=PUBLISHED_ROUND_STATUSES)
        .exclude(outcome__in=[AllocationOutcome.NOT_PAID, AllocationOutcome.RETURNED])
        .values(
            "round__pool__name",
            "round__pool__slug",
            "round__pool__currency",
            "round__pool__sponsor__display_name",
            "round__pool__sponsor__username",
        )
        .annotate(total=Sum("amount"))
        .order_by("-total", "round__pool__slug")
    )
    return [
        CampaignMatch(
            pool_name=row["round__pool__name"],
            pool_slug=row["round__pool__slug"],
            sponsor_name=row["round__pool__sponsor__display_name"] or row["round__pool__sponsor__username"],
            amount=row["total"],
            currency=row["round__pool__currency"],
        )
        for row in rows
    ]

"""A round's contributions for staff to challenge in its challenge window."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q

from pledges.models import Pledge

from ..models import Round
from .rounds import round_contributions


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

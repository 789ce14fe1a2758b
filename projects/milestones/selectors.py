"""Reads about milestones, reused by settlement, pages, the API and the admin."""

from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q, QuerySet, Sum

from projects.models import Campaign

from .models import Milestone, MilestoneStatus

# A backer's say in a vote is what they have in the succeeded campaign: their released pledges
# (pledges.models.PledgeStatus.RELEASED, spelled out because projects does not import pledges).
RELEASED_PLEDGE_STATUS = "released"


def campaign_has_milestones(*, campaign_id: int) -> bool:
    """Return whether the campaign releases its money milestone by milestone."""
    return Milestone.objects.filter(campaign_id=campaign_id).exists()


def milestones_of(*, campaign: Campaign) -> QuerySet[Milestone]:
    """Return the campaign's milestones in order."""
    return Milestone.objects.filter(campaign=campaign).order_by("position")


def milestone_shares_of(*, campaign_id: int) -> list[tuple[int, int]]:
    """Return ``(milestone id, share in bps)`` in plan order."""
    return list(Milestone.objects.filter(campaign_id=campaign_id).order_by("position").values_list("pk", "share_bps"))


def campaign_released_pledged(*, campaign_id: int) -> int:
    """Return what the backers' released pledges of the campaign add up to."""
    pledges = Campaign._meta.get_field("pledges").related_model.objects
    # What escrow released: a pledge paid over time releases its installments paid by then.
    released = pledges.filter(campaign_id=campaign_id, status=RELEASED_PLEDGE_STATUS)
    total = released.aggregate(t=Sum(F("amount") - F("unheld_amount")))["t"]
    return total or 0


def backer_vote_weight(*, campaign_id: int, backer_id: int) -> int:
    """Return what ``backer`` has in the succeeded campaign (0: not a backer, cannot vote)."""
    pledges = Campaign._meta.get_field("pledges").related_model.objects
    total = pledges.filter(campaign_id=campaign_id, backer_id=backer_id, status=RELEASED_PLEDGE_STATUS).aggregate(
        t=Sum("amount")
    )["t"]
    return total or 0


def milestone_vote_tally(*, milestone: Milestone) -> tuple[int, int]:
    """Return ``(amount approving, amount rejecting)`` of the milestone's current vote round."""
    tally = milestone.votes.filter(vote_round=milestone.vote_round).aggregate(
        yes=Sum("weight", filter=Q(approve=True), default=0), no=Sum("weight", filter=Q(approve=False), default=0)
    )
    return tally["yes"], tally["no"]


def milestones_awaiting_sign_off() -> QuerySet[Milestone]:
    """Return milestones the backers approved that Finance has not yet signed off."""
    return Milestone.objects.filter(status=MilestoneStatus.APPROVED, signed_off_at__isnull=True).select_related(
        "campaign"
    )


def milestones_signed_off_unreleased() -> QuerySet[Milestone]:
    """Return signed-off milestones whose tranche settlement has not released yet."""
    return Milestone.objects.filter(status=MilestoneStatus.APPROVED, signed_off_at__isnull=False)


def campaigns_with_expired_milestones(*, today) -> list[int]:
    """Return campaigns with a milestone overdue past its extension (or past the grace without one)."""
    grace_start = today - timedelta(days=settings.MILESTONE_OVERDUE_GRACE_DAYS)
    expired = Milestone.objects.filter(status=MilestoneStatus.OVERDUE).filter(
        Q(extended_to__isnull=False, extended_to__lt=today) | Q(extended_to__isnull=True, target_date__lt=grace_start)
    )
    return sorted(set(expired.values_list("campaign_id", flat=True)))

"""Read queries for campaigns, shared by pages and (later) the API."""

from django.db.models import QuerySet
from django.utils import timezone

from .models import Campaign, CampaignStatus


def campaigns_live() -> QuerySet[Campaign]:
    """Return campaigns taking pledges now, ending soonest first."""
    return (
        Campaign.objects.filter(status=CampaignStatus.LIVE, deadline__gt=timezone.now())
        .select_related("category", "initiator")
        .order_by("deadline", "id")
    )


def campaign_public_get(*, slug: str) -> Campaign | None:
    """Return a campaign anyone may see (it has been live), or None."""
    return (
        Campaign.objects.select_related("category", "initiator")
        .prefetch_related("rewards")
        .exclude(launched_at__isnull=True)
        .filter(slug=slug)
        .first()
    )

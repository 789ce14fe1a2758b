"""Read queries for pledges, shared by pages and the API."""

from django.db.models import QuerySet

from .models import Pledge


def pledges_of_backer(*, backer) -> QuerySet[Pledge]:
    """Return ``backer``'s pledges, newest first, with campaign and reward joined (one query)."""
    return Pledge.objects.filter(backer=backer).select_related("campaign", "reward").order_by("-created_at", "-id")


def pledge_of_backer_get(*, backer, pledge_id: int) -> Pledge | None:
    """Return the pledge if it is ``backer``'s own, else None (another backer's pledge stays unseen)."""
    return pledges_of_backer(backer=backer).filter(pk=pledge_id).first()

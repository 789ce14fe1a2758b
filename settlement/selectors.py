"""Settlement reads: what settlement left unfinished, for the sweeper and the operators' lists."""

from datetime import datetime

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone

from escrow.models import GatewayOperation, OperationStatus
from escrow.vocabulary import refund_key_expression
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus

from .models import LateReleaseBatch, LateReleaseItem


def settlement_find_stuck(*, now: datetime | None = None) -> list[int]:
    """Return ids of campaigns whose settlement made no progress for SETTLEMENT_STUCK_AFTER."""
    now = now or timezone.now()
    return list(
        Campaign.objects.filter(
            status__in=[CampaignStatus.CLOSING, CampaignStatus.CANCELLED],
            settled_at__isnull=True,
            last_settlement_progress_at__lte=now - settings.SETTLEMENT_STUCK_AFTER,
        )
        .exclude(settlement_outcome="")
        .values_list("pk", flat=True)
    )


def refunds_unconfirmed():
    """Return pledges whose refund the ledger records but the gateway has not confirmed."""
    refund_confirmed = GatewayOperation.objects.filter(
        idempotency_key=refund_key_expression(OuterRef("pk")),
        status=OperationStatus.SUCCEEDED,
    )
    return (
        Pledge.objects.filter(
            Q(status__in=[PledgeStatus.CANCELLED, PledgeStatus.REFUNDED]) | Q(status=PledgeStatus.FAILED)
        )
        .exclude(payment_reference="")
        .exclude(Exists(refund_confirmed))
    )


def late_pledges_waiting(campaign_id: int | None = None):
    """Return the held late pledges in no weekly batch yet (of one campaign, or of all)."""
    pledges = Pledge.objects.filter(is_late=True, status=PledgeStatus.HELD)
    if campaign_id is not None:
        pledges = pledges.filter(campaign_id=campaign_id)
    return pledges.filter(~Exists(LateReleaseItem.objects.filter(pledge_id=OuterRef("pk"))))


def late_release_summary(*, campaign_id: int) -> dict:
    """Return a campaign's weekly late batches (newest first) and what its held late pledges wait with."""
    waiting = late_pledges_waiting(campaign_id).aggregate(total=Sum("amount"), n=Count("pk"))
    return {
        "batches": list(LateReleaseBatch.objects.filter(campaign_id=campaign_id).order_by("-week")),
        "waiting_amount": waiting["total"] or 0,
        "waiting_count": waiting["n"],
    }

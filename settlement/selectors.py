"""Settlement reads: what settlement left unfinished, for the sweeper and the operators' lists."""

from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from escrow.models import GatewayOperation, OperationStatus
from escrow.vocabulary import refund_key_expression
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus


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

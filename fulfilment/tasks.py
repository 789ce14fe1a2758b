"""Celery tasks of delivery: thin wrappers over fulfilment's and settlement's services, by id."""

from celery import shared_task

from settlement.holdback import holdback_settle_tier, holdbacks_settle_ready

from . import notifications, services


@shared_task(acks_late=True)
def resolve_silent_deliveries() -> dict[str, int]:
    """Beat: silence past a tier's deadline counts as received; settle every tier now decided."""
    tiers = services.deliveries_resolve_silent()
    settled = holdbacks_settle_ready()
    return {"tiers_resolved": len(tiers), "tiers_settled": len(settled)}


@shared_task(acks_late=True)
def settle_tier_holdback(tier_id: int) -> None:
    holdback_settle_tier(tier_id=tier_id)


@shared_task(acks_late=True)
def send_shipped_emails(shipment_id: int) -> int:
    return notifications.shipped_emails_send(shipment_id=shipment_id)


@shared_task(acks_late=True)
def send_report_emails(report_id: int) -> int:
    return notifications.report_emails_send(report_id=report_id)


@shared_task(acks_late=True)
def send_decision_emails(report_id: int) -> int:
    return notifications.decision_emails_send(report_id=report_id)

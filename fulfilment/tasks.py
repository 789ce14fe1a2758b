"""Celery tasks of delivery: thin wrappers over fulfilment's and settlement's services, by id."""

from celery import shared_task

from . import notifications, services


@shared_task(acks_late=True)
def resolve_silent_deliveries() -> list[int]:
    """Beat: silence past a tier's deadline counts as received; return the tiers touched."""
    return services.deliveries_resolve_silent()


@shared_task(acks_late=True)
def send_shipped_emails(shipment_id: int) -> int:
    return notifications.shipped_emails_send(shipment_id=shipment_id)


@shared_task(acks_late=True)
def send_report_emails(report_id: int) -> int:
    return notifications.report_emails_send(report_id=report_id)


@shared_task(acks_late=True)
def send_decision_emails(report_id: int) -> int:
    return notifications.decision_emails_send(report_id=report_id)


@shared_task(acks_late=True)
def send_not_delivered_emails(declaration_id: int) -> int:
    return notifications.not_delivered_emails_send(declaration_id=declaration_id)


@shared_task(acks_late=True)
def send_survey_emails(survey_id: int) -> int:
    return notifications.survey_emails_send(survey_id=survey_id)


@shared_task(acks_late=True)
def erase_survey_addresses() -> int:
    """Beat: erase backers' addresses ``SURVEY_ADDRESS_KEEP_DAYS`` after their reward shipped."""
    return services.survey_addresses_erase()

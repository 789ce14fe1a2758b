"""Celery tasks: thin wrappers around the matching services, safe to run twice or at once."""

from celery import shared_task

from . import notifications, selectors, services


@shared_task(acks_late=True)
def end_due_rounds() -> list[int]:
    """End the rounds whose time is up, freezing and publishing their results."""
    return services.rounds_end_due()


@shared_task(expires=60)
def refresh_standing() -> int:
    """Compute the open rounds' standing again, so that live estimates read a recent copy."""
    return selectors.open_rounds_refresh_standing()


@shared_task(acks_late=True)
def send_application_decided_email(application_id: int) -> int:
    return notifications.application_decided_email_send(application_id=application_id)

"""Celery tasks of the promotion app: thin, and harmless to run twice or at once."""

from celery import shared_task

from . import notifications, services, visit_buffer


@shared_task(acks_late=True)
def send_due_notices() -> int:
    """Beat's task: make launch notices due, then send what is due (each exactly once)."""
    services.notices_arm()
    return notifications.notices_send_due()


@shared_task(acks_late=True)
def flush_referral_visits() -> int:
    """Beat's task: copy the arrivals buffered in Redis into the database."""
    return visit_buffer.referral_visits_flush()

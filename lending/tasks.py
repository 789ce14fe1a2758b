"""Celery tasks of the lending app: thin wrappers around its services."""

from celery import shared_task
from django.utils import timezone

from .services import loans_assess_late


@shared_task(acks_late=True)
def assess_late_loans() -> dict[str, int]:
    """Charge late fees and mark late or defaulted loans, one bounded batch; harmless to run twice."""
    return loans_assess_late(today=timezone.localdate())

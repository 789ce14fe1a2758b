"""Celery tasks of the lending app: thin wrappers around its services."""

from celery import shared_task
from django.utils import timezone

from .services import loans_assess_late, loans_run_due_work, withdrawals_reconcile


@shared_task(acks_late=True)
def assess_late_loans() -> dict[str, int]:
    """Charge late fees and mark late or defaulted loans, one bounded batch; harmless to run twice."""
    return loans_assess_late(today=timezone.localdate())


@shared_task(acks_late=True)
def run_loan_due_work() -> dict[str, int]:
    """Send due reminders and charge due installments, one bounded batch; harmless to run twice."""
    return loans_run_due_work()


@shared_task(acks_late=True)
def reconcile_withdrawals() -> dict[str, int]:
    """Finish lenders' withdrawals left pending by a crash after the gateway; harmless to run twice."""
    return withdrawals_reconcile()

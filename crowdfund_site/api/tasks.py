"""Periodic upkeep of the API's records."""

from celery import shared_task

from .idempotency import idempotency_records_purge


@shared_task(acks_late=True)
def purge_idempotency_records() -> int:
    """Delete Idempotency-Key records past their time to live."""
    return idempotency_records_purge()

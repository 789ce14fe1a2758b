"""Celery tasks: thin wrappers around the matching services, safe to run twice or at once."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def end_due_rounds() -> list[int]:
    """End the rounds whose time is up, freezing and publishing their results."""
    return services.rounds_end_due()

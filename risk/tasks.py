"""Celery tasks: thin wrappers that load by id and call a risk service.

All are safe to run twice or at the same time: the services are idempotent.
"""

from celery import shared_task

from pledges.models import Pledge
from projects.models import Campaign

from . import services


@shared_task(acks_late=True)
def refit_review_model() -> int:
    """Refit the review risk model (daily, from beat) and re-score the review queue with it."""
    version = services.risk_model_refit()
    services.risk_assess_campaigns_in_review()
    return version.version


@shared_task(acks_late=True)
def assess_campaign(campaign_id: int) -> float:
    """Score one campaign for review; return its probability of failure."""
    campaign = Campaign.objects.get(pk=campaign_id)
    return services.risk_assess_campaign(campaign=campaign).probability


@shared_task(acks_late=True)
def check_pledge(pledge_id: int, ip: str | None = None) -> float:
    """Run the fraud checks on one pledge; return its probability of fraud."""
    pledge = Pledge.objects.get(pk=pledge_id)
    return services.risk_check_pledge(pledge=pledge, ip=ip).probability


@shared_task(acks_late=True)
def check_recent_pledges() -> int:
    """Check the charged pledges of the last day that nobody checked yet (every few minutes, from beat)."""
    return services.risk_check_recent_pledges()

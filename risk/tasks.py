"""Celery tasks: thin wrappers that load by id and call a risk service.

All are safe to run twice or at the same time: the services are idempotent.
"""

import ipaddress
import logging

from celery import shared_task
from django.db import transaction

from pledges.models import Pledge
from projects.models import Campaign

from . import services

logger = logging.getLogger(__name__)


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
def assess_review_queue() -> int:
    """Score campaigns in review not scored since their submission (every few minutes, from beat)."""
    return services.risk_assess_unscored_in_review()


@shared_task(acks_late=True)
def check_pledge(pledge_id: int, ip: str | None = None) -> float:
    """Run the fraud checks on one pledge; return its probability of fraud."""
    pledge = Pledge.objects.get(pk=pledge_id)
    return services.risk_check_pledge(pledge=pledge, ip=ip).probability


def pledge_check_follow_up(*, pledge_id: int, ip: str | None = None) -> float:
    """Run the fraud checks on a pledge just held or changed; return its probability of fraud.

    Not a task of its own: registered with ``pledges.followups`` (``RiskConfig.ready``), it runs
    in the one follow-up message of a held or changed pledge, beside its e-mail. ``ip`` is the
    client address the pledge came from; anything that is not an IP address is dropped (the IP
    signals are then skipped). The periodic ``check_recent_pledges`` still catches a pledge whose
    message was lost.
    """
    pledge = Pledge.objects.get(pk=pledge_id)
    return services.risk_check_pledge(pledge=pledge, ip=client_ip_valid(ip)).probability


@shared_task(acks_late=True)
def check_recent_pledges() -> int:
    """Check the charged pledges of the last day that nobody checked yet (every few minutes, from beat)."""
    return services.risk_check_recent_pledges()


def enqueue_campaign_assessment(campaign_id: int) -> None:
    """Score ``campaign_id`` for review once the current transaction commits (at once outside one).

    For the interfaces that submit campaigns (pages, API): the risk app reads the others, so
    they ask it to look rather than the projects services calling into risk.
    """
    transaction.on_commit(lambda: _send(assess_campaign, campaign_id))


def _send(task, *args) -> None:
    # The user's action has succeeded by now; a broker outage must not turn it into an error
    # page. The periodic sweeps (assess_review_queue, check_recent_pledges) catch up.
    try:
        task.delay(*args)
    except Exception:
        logger.exception("Could not enqueue %s%r; the periodic sweep will pick it up", task.name, args)


def client_ip_valid(ip: str | None) -> str | None:
    """Return ``ip`` if it is an IPv4 or IPv6 address, else None."""
    try:
        return str(ipaddress.ip_address((ip or "").strip()))
    except ValueError:
        return None

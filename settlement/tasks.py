"""Celery tasks: thin wrappers that call settlement services by id.

All tasks are safe to run twice or at the same time: the services they call are idempotent.
"""

import logging

from celery import shared_task
from django.conf import settings

from escrow.checkpoints import ledger_seal
from pledges.changes import pledge_changes_reconcile

from . import holdback, installments, late_release, remainder, selectors, services, tranches

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def close_due_campaigns() -> list[int]:
    """Claim campaigns past their deadline; settlement is enqueued for each on commit."""
    return services.campaigns_close_due(enqueue_settlement=True)


@shared_task(acks_late=True)
def settle_campaign(campaign_id: int, after_id: int = 0) -> None:
    """Settle one batch of a campaign's pledges (ids above ``after_id``), then queue the next."""
    next_after_id = services.settlement_run_next_batch(campaign_id=campaign_id, after_id=after_id)
    if next_after_id is not None:
        settle_campaign.delay(campaign_id, next_after_id)


@shared_task(acks_late=True)
def sweep_settlements() -> dict:
    """Re-enqueue stuck settlements and finish pledges a crash left half done."""
    stuck = selectors.settlement_find_stuck()
    for campaign_id in stuck:
        logger.warning("Settlement of campaign %s made no progress; re-enqueueing", campaign_id)
        settle_campaign.delay(campaign_id)
    return {"stuck_campaigns": len(stuck), **services.pledges_reconcile(), **pledge_changes_reconcile()}


@shared_task(acks_late=True)
def charge_due_installments() -> dict:
    """Charge the installments of pledges paid over time that are due; pay out those of released pledges."""
    return installments.installments_run_due()


@shared_task(acks_late=True)
def seal_ledger() -> int:
    """Seal new ledger transactions into checkpoints; a second worker running it at once returns at once."""
    return ledger_seal(
        batch_size=settings.LEDGER_CHECKPOINT_BATCH_SIZE, max_checkpoints=settings.LEDGER_CHECKPOINTS_PER_RUN
    )


@shared_task(acks_late=True)
def refund_remainder(campaign_id: int) -> None:
    """Refund one batch of a campaign's remainder, then queue the next."""
    if remainder.remainder_refund_run_next_batch(campaign_id=campaign_id):
        refund_remainder.delay(campaign_id)


@shared_task(acks_late=True)
def detect_overdue_milestones() -> dict:
    """Mark overdue milestones, end campaigns overdue past the extension, re-enqueue stalled refunds."""
    ended = remainder.milestones_end_overdue()
    stuck = remainder.remainder_refunds_stuck()
    for campaign_id in stuck:
        logger.warning("Refund of the remainder of campaign %s made no progress; re-enqueueing", campaign_id)
        refund_remainder.delay(campaign_id)
    return {"ended": len(ended), "stuck_remainder_refunds": len(stuck)}


@shared_task(acks_late=True)
def release_signed_off_tranches() -> list[int]:
    """Release tranches Finance signed off whose release did not happen at once (a crash, a refused payout)."""
    return tranches.tranches_release_signed_off()


@shared_task(acks_late=True)
def settle_ready_holdbacks() -> list[int]:
    """Settle the holdback of every shipped tier whose backers are all decided; return the tiers."""
    return holdback.holdbacks_settle_ready()


@shared_task(acks_late=True)
def settle_holdback_tier(tier_id: int) -> None:
    """Settle one tier's holdback now (e.g. refund a tier just declared not delivered)."""
    holdback.holdback_settle_tier(tier_id=tier_id)


@shared_task(acks_late=True)
def release_late_pledges() -> list[int]:
    """Release each succeeded campaign's late pledges of the weeks that ended, once per week; return the batches."""
    return late_release.late_releases_run()

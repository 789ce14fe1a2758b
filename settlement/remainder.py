"""Refund of the remainder: what a campaign with milestones never released goes back to its backers.

It starts when the initiator abandons the project, a milestone is overdue past its extension, or
Finance declares the campaign failed (with a reason; audited). Everything neither released nor
signed off is refunded pro rata to what each released pledge paid, split exactly by the largest
remainder method, as one partial refund per pledge through the gateway. Never above what the
pledge paid (its part is at most its share of a remainder no larger than the pledges), never
twice: the gateway and the ledger are keyed by pledge, and the job's cursor moves in the same
transaction as its postings, so a worker killed anywhere is restarted and refunds every backer
exactly once. Batches go as the holdback's (``settlement.part_refunds``): gateway first, outside
any lock, then one short transaction.
"""

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from escrow.vocabulary_tranches import (
    remainder_account_specs,
    remainder_refund_charge_key,
    remainder_refund_key,
    remainder_refund_posting,
)
from pledges.models import Pledge, PledgeStatus
from projects.milestones.models import Milestone, MilestoneStatus
from projects.milestones.selectors import campaign_has_milestones, campaigns_with_expired_milestones
from projects.milestones.services import milestones_fail_open, milestones_mark_overdue
from projects.models import Campaign, CampaignStatus
from projects.services import campaign_lock

from .models import RemainderCause, RemainderRefund
from .part_refunds import PartRefund, PartRefundFlow


class RemainderRefundError(Exception):
    """The gateway refused part of a refund of the remainder: an operator must look."""


REMAINDER_REFUNDS = PartRefundFlow(
    name="remainder",
    key=remainder_refund_key,
    charge_key=remainder_refund_charge_key,
    account_specs=remainder_account_specs,
    posting=remainder_refund_posting,
    error=RemainderRefundError,
)


def remainder_threshold(*, amount: int, pledged_total: int, pledges: list[tuple[int, int]]) -> tuple[int, int] | None:
    """Return ``(remainder, pledge id)`` of the last pledge that gets a unit left over, or None.

    ``pledges`` are ``(id, amount)``. Each pledge's exact share is ``amount * paid / pledged_total``;
    the floors leave ``k`` units, given one each to the ``k`` largest remainders, earlier ids first
    (as ``crowdfund_site.money.allocate`` does).
    """
    if not amount or not pledges:
        return None
    floors = 0
    keyed = []
    for pledge_id, paid in pledges:
        share, rest = divmod(amount * paid, pledged_total)
        floors += share
        keyed.append((-rest, pledge_id))
    left_over = amount - floors
    if left_over <= 0:
        return None
    keyed.sort()
    rest, pledge_id = keyed[left_over - 1]
    return -rest, pledge_id


def remainder_part(*, job: RemainderRefund, pledge_id: int, paid: int) -> int:
    """Return the part of the remainder that goes back to one pledge."""
    share, rest = divmod(job.amount * paid, job.pledged_total)
    if job.threshold_pledge_id is not None and (
        rest > job.threshold_remainder or (rest == job.threshold_remainder and pledge_id <= job.threshold_pledge_id)
    ):
        share += 1
    return share


def _committed_amount(campaign: Campaign) -> int:
    """Return the tranches already released or signed off: they are not the backers' any more."""
    return sum(
        m.amount or 0
        for m in Milestone.objects.filter(campaign=campaign)
        if m.status == MilestoneStatus.RELEASED or m.signed_off_at is not None
    )


def remainder_refund_start(
    *, campaign: Campaign, actor, cause: str, reason: str = "", enqueue: bool = True
) -> RemainderRefund:
    """Stop a campaign's staged release and start refunding what it has not released; return the job.

    The initiator may abandon (``cause="abandoned"``); Finance may declare failure with a reason
    (``"declared_failed"``); the overdue detector (``actor=None``) ends an overdue milestone past its
    extension (``"overdue"``). In one transaction holding the campaign's lock: every milestone
    neither released nor signed off fails, the split is fixed, the audit event
    ("remainder_refund_start") is written. Raises NotAllowed, InvalidInput (no reason), or
    Conflict (not a succeeded campaign with milestones, or already ending).
    """
    reason = (reason or "").strip()
    if cause == RemainderCause.ABANDONED:
        if actor is None or actor.pk != campaign.initiator_id:
            raise NotAllowed("Only the initiator can abandon the project.", code="not_allowed")
        reason = reason or "abandoned by the initiator"
    elif cause == RemainderCause.DECLARED_FAILED:
        if actor is None or not actor.has_perm("projects.declare_milestone_failure"):
            raise NotAllowed("Only finance staff can declare a campaign's milestones failed.", code="not_allowed")
        if not reason:
            raise InvalidInput(
                "Give a reason for declaring the milestones failed.", code="reason_required", field="reason"
            )
    elif cause == RemainderCause.OVERDUE:
        reason = reason or "a milestone is overdue past its extension"
    else:
        raise InvalidInput("Unknown cause.", code="invalid_cause", field="cause")
    with transaction.atomic(durable=True):
        campaign = campaign_lock(campaign_id=campaign.pk)
        if campaign.status != CampaignStatus.SUCCEEDED or not campaign_has_milestones(campaign_id=campaign.pk):
            raise Conflict("Only a succeeded campaign with milestones has a remainder to refund.", code="no_remainder")
        if RemainderRefund.objects.filter(campaign=campaign).exists():
            raise Conflict("This campaign's remainder is already being refunded.", code="already_refunding")
        milestones_fail_open(campaign=campaign, actor=actor, reason=reason)
        pledges = list(
            Pledge.objects.filter(campaign=campaign, status=PledgeStatus.RELEASED)
            .order_by("id")
            .values_list("id", "amount")
        )
        pledged_total = sum(paid for _, paid in pledges)
        amount = max(pledged_total - _committed_amount(campaign), 0)
        threshold = remainder_threshold(amount=amount, pledged_total=pledged_total, pledges=pledges)
        now = timezone.now()
        job = RemainderRefund.objects.create(
            campaign=campaign,
            cause=cause,
            reason=reason,
            actor=actor if actor is not None and actor.pk else None,
            amount=amount,
            pledged_total=pledged_total,
            threshold_remainder=threshold[0] if threshold else None,
            threshold_pledge_id=threshold[1] if threshold else None,
            finished_at=now if amount == 0 else None,
        )
        audit_record(
            actor=actor,
            action="remainder_refund_start",
            obj=campaign,
            reason=reason,
            details={"cause": cause, "amount": amount},
        )
        if enqueue and job.finished_at is None:
            campaign_id = campaign.pk
            transaction.on_commit(lambda: _enqueue(campaign_id))
    return job


def _enqueue(campaign_id: int) -> None:
    from .tasks import refund_remainder  # tasks import this module

    refund_remainder.delay(campaign_id)


def remainder_refund_run_next_batch(*, campaign_id: int, batch_size: int | None = None) -> bool:
    """Refund the next batch of pledges' parts; return True while more remain.

    Harmless to run twice or at the same time: a batch another run has posted is skipped by the
    cursor check, and a batch refunded at the gateway but not posted (a killed worker) is sent
    again with the same keys, which the gateway answers with the first result.
    """
    batch_size = batch_size or settings.REMAINDER_REFUND_BATCH_SIZE
    job = RemainderRefund.objects.filter(campaign_id=campaign_id).select_related("campaign").first()
    if job is None or job.finished_at is not None:
        return False
    cursor = job.after_pledge_id
    rows = list(
        Pledge.objects.filter(campaign_id=campaign_id, status=PledgeStatus.RELEASED, id__gt=cursor)
        .order_by("id")
        .values_list("id", "backer_id", "amount", "payment_reference")[:batch_size]
    )
    parts = [
        PartRefund(pledge_id=pledge_id, backer_id=backer_id, amount=part, charge_reference=reference)
        for pledge_id, backer_id, paid, reference in rows
        if (part := remainder_part(job=job, pledge_id=pledge_id, paid=paid)) > 0
    ]
    REMAINDER_REFUNDS.send(parts)
    with transaction.atomic(durable=True):
        job = RemainderRefund.objects.select_for_update().select_related("campaign").get(pk=job.pk)
        if job.finished_at is not None or job.after_pledge_id != cursor:
            return job.finished_at is None  # another run posted this batch
        campaign = job.campaign
        REMAINDER_REFUNDS.post(campaign_id=campaign.pk, currency=campaign.currency, refunds=parts)
        now = timezone.now()
        if rows:
            job.after_pledge_id = rows[-1][0]
        job.refunded_amount += sum(part.amount for part in parts)
        job.refunded_count += len(parts)
        job.last_progress_at = now
        if len(rows) < batch_size:
            job.finished_at = now
            audit_record(
                actor=None,
                action="remainder_refund_finish",
                obj=campaign,
                details={"refunded": job.refunded_amount, "pledges": job.refunded_count},
            )
        job.save()
    return job.finished_at is None


def remainder_refund_run(*, campaign_id: int, batch_size: int | None = None) -> RemainderRefund:
    """Refund a campaign's remainder completely, in this process (no broker)."""
    while remainder_refund_run_next_batch(campaign_id=campaign_id, batch_size=batch_size):
        pass
    return RemainderRefund.objects.get(campaign_id=campaign_id)


def remainder_refunds_stuck(*, now: datetime | None = None) -> list[int]:
    """Return campaigns whose refund of the remainder made no progress for ``SETTLEMENT_STUCK_AFTER``."""
    now = now or timezone.now()
    return list(
        RemainderRefund.objects.filter(
            finished_at__isnull=True, last_progress_at__lte=now - settings.SETTLEMENT_STUCK_AFTER
        ).values_list("campaign_id", flat=True)
    )


def milestones_end_overdue(*, today=None) -> list[int]:
    """Mark overdue milestones and refund the remainder of campaigns overdue past the extension; return them."""
    today = today or timezone.localdate()
    milestones_mark_overdue(today=today)
    ended = []
    for campaign_id in campaigns_with_expired_milestones(today=today):
        if RemainderRefund.objects.filter(campaign_id=campaign_id).exists():
            continue
        campaign = Campaign.objects.get(pk=campaign_id)
        try:
            remainder_refund_start(campaign=campaign, actor=None, cause=RemainderCause.OVERDUE)
        except Conflict:
            continue  # ended meanwhile by someone else
        ended.append(campaign_id)
    return ended

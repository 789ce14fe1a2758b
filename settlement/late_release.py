"""Late pledges' weekly release: each week's held late pledges go to the initiator, minus the fee.

Week ``n`` of a succeeded campaign ends ``n`` times 7 days after its deadline. Once a week has
ended, beat's ``release_late_pledges`` makes that week's batch (``LateReleaseBatch``, one per
campaign and week by a unique constraint) of the late pledges held before its end and in no
batch yet, and finishes it:

1. collecting: in transactions of at most ``LATE_RELEASE_BATCH_SIZE`` pledges, each holding the
   batch's row lock (a second worker skips it) and the pledges' row locks (a staff refund waits,
   or has already taken the pledge out), each pledge is released (``release:pledge:<id>``, escrow
   -> payable), recorded as the batch's item (a pledge is in at most one: unique) and marked
   released;
2. released: with no pledge left, the fee is taken as settlement takes it at success (the
   campaign's agreed rate, ``fee_split``) on the batch's total, in one transaction with the batch's
   amounts fixed;
3. paid: the net is paid out at the gateway outside any lock (key ``payout:late:batch:<id>``), then
   one transaction posts the payout, marks the batch paid and audits it.

A worker killed at any point leaves a batch in one of these states; the next run finishes it
from there, every posting and the payout under its own key, so nothing is released or paid twice.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.services import audit_record
from crowdfund_site.bulk import AnyOf, insert_rows
from crowdfund_site.db import create_unless_taken
from escrow.gateway import get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post, ledger_post_many
from escrow.vocabulary import (
    fee_account_specs,
    initiator_payout_code,
    payout_account_specs,
    release_account_specs,
    release_posting,
)
from escrow.vocabulary_late import late_fee_posting, late_payout_key, late_payout_posting
from pledges.models import Pledge, PledgeStatus, PledgeStatusChange
from projects.models import Campaign, CampaignStatus

from .models import LateReleaseBatch, LateReleaseItem, LateReleaseStatus
from .selectors import late_pledges_waiting
from .tranches import fee_split

logger = logging.getLogger(__name__)

WEEK = timedelta(days=7)


def late_week_ended(*, deadline: datetime, now: datetime) -> int:
    """Return the number of the last week after ``deadline`` that has ended at ``now`` (0: none yet)."""
    return max((now - deadline) // WEEK, 0)


def late_releases_run(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Make and finish every batch that is due, and finish those a crash left; return the batches worked on.

    Harmless to run twice or at the same time: a week's batch is made once (unique), and each
    step of it locks its row, skipping a batch another worker holds.
    """
    now = now or timezone.now()
    worked = []
    for batch_id in LateReleaseBatch.objects.exclude(status=LateReleaseStatus.PAID).values_list("pk", flat=True)[
        :limit
    ]:
        late_batch_finish(batch_id=batch_id)
        worked.append(batch_id)
    campaign_ids = (
        late_pledges_waiting()
        .filter(campaign__status=CampaignStatus.SUCCEEDED)
        .values_list("campaign_id", flat=True)
        .distinct()
        .order_by("campaign_id")[:limit]
    )
    for campaign_id, deadline in Campaign.objects.filter(pk__in=list(campaign_ids)).values_list("pk", "deadline"):
        week = late_week_ended(deadline=deadline, now=now)
        if week < 1:
            continue
        period_end = deadline + week * WEEK
        if not late_pledges_waiting(campaign_id).filter(held_at__lt=period_end).exists():
            continue  # what waits was held this week: next week's batch takes it
        batch = create_unless_taken(LateReleaseBatch, campaign_id=campaign_id, week=week, period_end=period_end)
        if batch is None:
            continue  # this week's batch exists: the rest waits for next week's
        late_batch_finish(batch_id=batch.pk)
        worked.append(batch.pk)
    return worked


def late_batch_finish(*, batch_id: int, batch_size: int | None = None) -> LateReleaseBatch | None:
    """Take a batch as far as it goes: collect its pledges, fix its fee, pay it out; return it.

    Returns None if another worker holds it. Raises nothing for a refused payout (logged; the
    next run retries it with the same key).
    """
    batch_size = batch_size or settings.LATE_RELEASE_BATCH_SIZE
    while True:
        with transaction.atomic(durable=True):
            batch = LateReleaseBatch.objects.select_for_update(skip_locked=True).filter(pk=batch_id).first()
            if batch is None:
                return None
            if batch.status != LateReleaseStatus.COLLECTING:
                break
            if _collect(batch=batch, batch_size=batch_size) < batch_size:
                _fix_fee(batch=batch)
                break
    if batch.status == LateReleaseStatus.RELEASED:
        batch = _pay_out(batch=batch)
    return batch


def _collect(*, batch: LateReleaseBatch, batch_size: int) -> int:
    """Release up to ``batch_size`` of the batch's pledges into it, in the caller's transaction; return how many."""
    rows = list(
        late_pledges_waiting(batch.campaign_id)
        .filter(held_at__lt=batch.period_end)
        .select_for_update()
        .order_by("id")
        .values_list("id", "amount")[:batch_size]
    )
    if not rows:
        return 0
    campaign = Campaign.objects.only("currency").get(pk=batch.campaign_id)
    accounts = ledger_accounts_get_or_create(
        specs=release_account_specs(campaign_id=campaign.pk), currency=campaign.currency
    )
    ledger_post_many(
        postings=[
            release_posting(
                pledge_id=pledge_id,
                campaign_id=campaign.pk,
                amount=amount,
                currency=campaign.currency,
                accounts=accounts,
            )
            for pledge_id, amount in rows
        ]
    )
    now = timezone.now()
    ids = [pledge_id for pledge_id, _amount in rows]
    insert_rows(model=LateReleaseItem, fields=["batch", "pledge", "amount"], rows=[(batch.pk, *row) for row in rows])
    # The lock and the HELD filter above are this bulk transition's guard (held -> released).
    Pledge.objects.filter(AnyOf(F("id"), ids)).update(status=PledgeStatus.RELEASED, closed_at=now)
    insert_rows(
        model=PledgeStatusChange,
        fields=["pledge", "from_status", "to_status", "reason", "created_at"],
        rows=[
            (pledge_id, PledgeStatus.HELD, PledgeStatus.RELEASED, f"late pledges, week {batch.week}", now)
            for pledge_id in ids
        ],
    )
    batch.amount += sum(amount for _id, amount in rows)
    batch.pledge_count += len(rows)
    batch.save(update_fields=["amount", "pledge_count"])
    return len(rows)


def _fix_fee(*, batch: LateReleaseBatch) -> None:
    """Post the fee on what the batch released and fix its net; a batch that released nothing is done."""
    campaign = Campaign.objects.get(pk=batch.campaign_id)
    split = fee_split(campaign=campaign, released=batch.amount)
    now = timezone.now()
    batch.released_at = now
    if split is None:
        batch.status, batch.paid_at = LateReleaseStatus.PAID, now
        batch.save(update_fields=["status", "released_at", "paid_at"])
        return
    if split.fee:
        accounts = ledger_accounts_get_or_create(
            specs=fee_account_specs(campaign_id=campaign.pk), currency=campaign.currency
        )
        ledger_post(
            posting=late_fee_posting(
                batch_id=batch.pk,
                campaign_id=campaign.pk,
                fee=split.fee,
                released=split.released,
                bps=split.bps,
                currency=campaign.currency,
                accounts=accounts,
            )
        )
    batch.fee, batch.fee_bps, batch.net = split.fee, split.bps, split.net
    batch.status = LateReleaseStatus.RELEASED
    batch.save(update_fields=["fee", "fee_bps", "net", "status", "released_at"])


def _pay_out(*, batch: LateReleaseBatch) -> LateReleaseBatch:
    campaign = Campaign.objects.only("currency", "initiator_id").get(pk=batch.campaign_id)
    if batch.net:
        result = get_gateway().payout(
            idempotency_key=late_payout_key(batch.pk),
            amount=batch.net,
            currency=campaign.currency,
            destination=initiator_payout_code(campaign.initiator_id),
        )
        if not result.ok:
            logger.error("Payout of late batch %s failed: %s %s", batch.pk, result.code, result.message)
            return batch
    with transaction.atomic(durable=True):
        batch = LateReleaseBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != LateReleaseStatus.RELEASED:
            return batch
        if batch.net:
            ids = {"campaign_id": campaign.pk, "initiator_id": campaign.initiator_id}
            accounts = ledger_accounts_get_or_create(specs=payout_account_specs(**ids), currency=campaign.currency)
            ledger_post(
                posting=late_payout_posting(
                    batch_id=batch.pk, amount=batch.net, currency=campaign.currency, accounts=accounts, **ids
                )
            )
        batch.status, batch.paid_at = LateReleaseStatus.PAID, timezone.now()
        batch.save(update_fields=["status", "paid_at"])
        audit_record(
            actor=None,
            action="late_release",
            obj=campaign,
            details={
                "batch": batch.pk,
                "week": batch.week,
                "pledges": batch.pledge_count,
                "amount": batch.amount,
                "fee": batch.fee,
                "net": batch.net,
            },
        )
    return batch

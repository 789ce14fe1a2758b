"""Settlement: closing campaigns at their deadline, cancelling them, and moving escrow.

This is the one module that orchestrates campaigns, pledges, the payment gateway and the
ledger together. Its guarantees:

- A due campaign is claimed once (``select_for_update(skip_locked=True)``), moved to closing,
  and its outcome (release or refund) is decided then and stored, so a restarted settlement can
  never change its mind halfway.
- Pledges are settled in bounded batches, each in its own short transaction that locks the
  batch's pledge rows and re-checks they are still held. Gateway refunds happen before that
  transaction, outside any lock, keyed by pledge; ledger postings are keyed by pledge too.
  A worker killed at any point can be restarted and settles every pledge exactly once.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from accounts.services import audit_record
from crowdfund_site.bulk import AnyOf, insert_rows
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import format_amount
from escrow.gateway import get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post, ledger_post_many
from escrow.vocabulary import (
    fee_account_specs,
    fee_posting,
    initiator_payout_code,
    payout_account_specs,
    payout_key,
    payout_posting,
    refund_account_specs,
    refund_posting,
    release_account_specs,
    release_posting,
)
from escrow.vocabulary_tranches import staged_release_account_specs, staged_release_posting
from lending.selectors import loan_terms_of
from lending.services import loan_create
from matching.services import matching_campaign_settle
from pledges.installments import installments_cancel
from pledges.models import Pledge, PledgeStatus, PledgeStatusChange
from pledges.selectors import pledge_refund_requests
from pledges.services import pledge_reconcile_pending, pledge_send_refund
from projects.milestones.selectors import campaign_has_milestones
from projects.models import Campaign, CampaignStatus, FundingModel, SettlementOutcome
from projects.services import campaign_lock, campaign_set_status

from .holdback import holdback_keep
from .selectors import refunds_unconfirmed
from .tranches import FeeSplit, amount_released_at_success, fee_split, tranches_post_first

logger = logging.getLogger(__name__)


class SettlementError(Exception):
    """Settlement cannot go on without an operator (e.g. the gateway refused a refund)."""


def _enqueue_settlement(campaign_ids: list[int]) -> None:
    from .tasks import settle_campaign  # tasks import this module

    for campaign_id in campaign_ids:
        settle_campaign.delay(campaign_id)


def settlement_outcome_for(*, campaign: Campaign, held_total: int) -> str:
    """Return what closing does with the held pledges under the campaign's funding model."""
    if campaign.funding_model == FundingModel.FLEXIBLE:
        return SettlementOutcome.RELEASE if held_total > 0 else SettlementOutcome.REFUND
    return SettlementOutcome.RELEASE if held_total >= campaign.goal else SettlementOutcome.REFUND


def campaigns_close_due(*, now: datetime | None = None, limit: int = 100, enqueue_settlement: bool = True) -> list[int]:
    """Claim live campaigns past their deadline, move them to closing; return their ids.

    Campaigns locked by someone else (a pledge being recorded) are skipped and picked up on
    the next run. With ``enqueue_settlement`` a settle task is queued for each after commit.
    """
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        due = list(
            Campaign.objects.select_for_update(skip_locked=True)
            .filter(status=CampaignStatus.LIVE, deadline__lte=now)
            .order_by("deadline", "id")[:limit]
        )
        for campaign in due:
            held_total = _held_total(campaign.pk)
            outcome = settlement_outcome_for(campaign=campaign, held_total=held_total)
            campaign_set_status(
                campaign=campaign,
                to_status=CampaignStatus.CLOSING,
                reason=(
                    f"Deadline passed with {format_amount(held_total, campaign.currency)} of "
                    f"{format_amount(campaign.goal, campaign.currency)} held: {outcome}."
                ),
            )
            campaign.settlement_outcome = outcome
            campaign.last_settlement_progress_at = now
            campaign.save(update_fields=["settlement_outcome", "last_settlement_progress_at", "updated_at"])
        claimed = [c.pk for c in due]
        if enqueue_settlement and claimed:
            transaction.on_commit(lambda: _enqueue_settlement(claimed))
    return claimed


def _held_total(campaign_id: int) -> int:
    total = Pledge.objects.filter(campaign_id=campaign_id, status=PledgeStatus.HELD).aggregate(t=Sum("amount"))["t"]
    return total or 0


def campaign_cancel(*, campaign: Campaign, actor, reason: str = "", enqueue_settlement: bool = True) -> Campaign:
    """Cancel a campaign that has not ended; every held pledge is then refunded.

    The initiator may cancel their own campaign; staff may cancel any, with a reason. The
    cancellation and its audit event ("campaign_cancel", who and why) are one transaction,
    whichever interface asked. Raises NotAllowed, InvalidInput (missing reason) or Conflict
    (already final or closing).
    """
    reason = (reason or "").strip()
    with transaction.atomic(durable=True):
        campaign = campaign_lock(campaign_id=campaign.pk)
        is_initiator = actor is not None and actor.pk == campaign.initiator_id
        if not is_initiator and not (actor is not None and actor.has_perm("projects.cancel_campaign")):
            raise NotAllowed("Only the initiator or platform staff can cancel this campaign.", code="not_allowed")
        if not is_initiator and not reason:
            raise InvalidInput("Give a reason for cancelling.", code="reason_required", field="reason")
        campaign_set_status(
            campaign=campaign,
            to_status=CampaignStatus.CANCELLED,
            actor=actor,
            reason=reason or "cancelled by initiator",
        )
        campaign.settlement_outcome = SettlementOutcome.REFUND
        campaign.last_settlement_progress_at = timezone.now()
        if not Pledge.objects.filter(campaign_id=campaign.pk, status=PledgeStatus.HELD).exists():
            matching_campaign_settle(campaign=campaign, release=False)
            campaign.settled_at = timezone.now()
        campaign.save(update_fields=["settlement_outcome", "last_settlement_progress_at", "settled_at", "updated_at"])
        audit_record(actor=actor, action="campaign_cancel", obj=campaign, reason=reason)
        if enqueue_settlement and campaign.settled_at is None:
            campaign_id = campaign.pk
            transaction.on_commit(lambda: _enqueue_settlement([campaign_id]))
    return campaign


def _needs_settlement(campaign: Campaign) -> bool:
    return (
        campaign.settled_at is None
        and campaign.status in (CampaignStatus.CLOSING, CampaignStatus.CANCELLED)
        and bool(campaign.settlement_outcome)
    )


def settlement_run_batch(*, campaign_id: int, batch_size: int | None = None) -> bool:
    """Settle the next batch of held pledges; return True if more batches remain.

    When no held pledge is left, finishes the campaign (fee, payout, final status) and
    returns False. Harmless to run twice or concurrently for the same campaign.
    """
    return settlement_run_next_batch(campaign_id=campaign_id, batch_size=batch_size) is not None


def settlement_run_next_batch(*, campaign_id: int, after_id: int = 0, batch_size: int | None = None) -> int | None:
    """Settle the next batch of held pledges with ids above ``after_id``; return where to go on.

    Returns the last pledge id of a full batch, to pass as ``after_id`` next time, or None once
    no held pledge is left and the campaign is finished (fee, payout, final status). Walking
    in id order from where the last batch ended keeps every batch's query as cheap as the
    first, however many pledges are already settled; nothing is missed, because no pledge
    becomes held once its campaign is closing or cancelled, and finishing re-checks that none
    is left. Harmless to run twice or concurrently for the same campaign.
    """
    batch_size = batch_size or settings.SETTLEMENT_BATCH_SIZE
    campaign = Campaign.objects.get(pk=campaign_id)
    if not _needs_settlement(campaign):
        return None
    # What the card paid: a part paid from a lender's balance goes back to it in the ledger only.
    batch = list(
        Pledge.objects.filter(campaign_id=campaign_id, status=PledgeStatus.HELD, id__gt=after_id)
        .order_by("id")
        .values_list("id", "backer_id", F("amount") - F("from_balance") - F("unheld_amount"), "payment_reference")[
            :batch_size
        ]
    )
    if batch:
        if campaign.settlement_outcome == SettlementOutcome.REFUND:
            _refund_at_gateway(batch)
        _settle_pledges(campaign=campaign, pledge_ids=[row[0] for row in batch])
    if len(batch) == batch_size:
        return batch[-1][0]
    settlement_finalize(campaign_id=campaign_id)
    return None


def settlement_run(*, campaign_id: int, batch_size: int | None = None) -> None:
    """Settle a closing or cancelled campaign completely, in this process (no broker)."""
    after_id: int | None = 0
    while after_id is not None:
        after_id = settlement_run_next_batch(campaign_id=campaign_id, after_id=after_id, batch_size=batch_size)


def _refund_at_gateway(batch: list[tuple[int, int, int, str]]) -> None:
    # A pledge whose amount was raised has several charges, each refunded under its own key.
    requests = pledge_refund_requests(
        pledges=[(pledge_id, amount, reference) for pledge_id, _backer_id, amount, reference in batch]
    )
    results = get_gateway().refund_many(requests=requests)
    refused = [(r.idempotency_key, res.code) for r, res in zip(requests, results, strict=True) if not res.ok]
    if refused:
        raise SettlementError(f"The gateway refused refunds for pledges {refused[:10]}")


def _settle_pledges(*, campaign: Campaign, pledge_ids: list[int]) -> None:
    refund = campaign.settlement_outcome == SettlementOutcome.REFUND
    to_status = PledgeStatus.REFUNDED if refund else PledgeStatus.RELEASED
    now = timezone.now()
    with transaction.atomic(durable=True):
        # Lock in id order and keep only the pledges still held: a concurrent or earlier
        # run of the same batch has already settled the others.
        rows = list(
            Pledge.objects.select_for_update()
            .filter(AnyOf(F("id"), pledge_ids), status=PledgeStatus.HELD)
            .order_by("id")
            # What escrow holds: a pledge paid over time holds only its installments paid so far.
            .values_list("id", "backer_id", F("amount") - F("unheld_amount"), "from_balance")
        )
        if not rows:
            return
        # A campaign with milestones releases its pledges into staged escrow, not to its payable.
        staged = not refund and campaign_has_milestones(campaign_id=campaign.pk)
        if refund:
            specs = {
                spec
                for _, backer_id, _, from_balance in rows
                for spec in refund_account_specs(
                    backer_id=backer_id, campaign_id=campaign.pk, from_balance=bool(from_balance)
                )
            }
        else:
            specs = set((staged_release_account_specs if staged else release_account_specs)(campaign_id=campaign.pk))
        accounts = ledger_accounts_get_or_create(specs=sorted(specs), currency=campaign.currency)
        money = {"campaign_id": campaign.pk, "currency": campaign.currency, "accounts": accounts}
        release = staged_release_posting if staged else release_posting
        # A part paid from a lender's balance is refunded to that balance (in the same posting);
        # released, it is disbursed with the rest.
        postings = [
            refund_posting(pledge_id=pledge_id, backer_id=backer_id, amount=amount, from_balance=from_balance, **money)
            if refund
            else release(pledge_id=pledge_id, amount=amount, **money)
            for pledge_id, backer_id, amount, from_balance in rows
        ]
        ledger_post_many(postings=postings)
        settled_ids = [row[0] for row in rows]
        if refund:
            installments_cancel(pledge_ids=settled_ids)  # a refunded plan charges nothing more
        # The filter on HELD above is this bulk transition's guard (held -> released/refunded).
        Pledge.objects.filter(AnyOf(F("id"), settled_ids)).update(status=to_status, closed_at=now)
        reason = f"campaign {campaign.status}"
        insert_rows(
            model=PledgeStatusChange,
            fields=["pledge", "from_status", "to_status", "reason", "created_at"],
            rows=[(pledge_id, PledgeStatus.HELD, to_status, reason, now) for pledge_id in settled_ids],
        )
        Campaign.objects.filter(pk=campaign.pk).update(last_settlement_progress_at=now)


def settlement_finalize(*, campaign_id: int) -> Campaign:
    """Finish a campaign whose pledges are all settled; idempotent.

    Release: the platform fee (agreed at launch, split exactly in integers) moves from the
    initiator's payable to platform revenue, the rest is paid out through the gateway, and the
    campaign succeeds. Refund: the campaign fails (a cancelled one stays cancelled).

    The payout is sent first, outside any lock (keyed by campaign, so a retry pays nothing
    twice); then one transaction, holding the campaign's row lock, posts the fee and the payout
    and sets the final status: a crash anywhere leaves either all of it or none of it, and the
    next run finishes the rest. Raises SettlementError if a pledge is still held or the
    gateway refuses the payout.

    A debt campaign's payout disburses its loan: the same transaction creates the loan with its
    lenders and schedule (``lending.services.loan_create``); one without loan terms raises
    SettlementError before anything is paid out.
    """
    campaign = Campaign.objects.get(pk=campaign_id)
    if not _needs_settlement(campaign):
        return campaign
    if Pledge.objects.filter(campaign_id=campaign_id, status=PledgeStatus.HELD).exists():
        raise SettlementError(f"Campaign {campaign_id} still has held pledges")
    release = campaign.settlement_outcome == SettlementOutcome.RELEASE
    if release and campaign.funding_model == FundingModel.DEBT and loan_terms_of(campaign=campaign) is None:
        # Its loan is made from its terms: refuse before any money leaves for the borrower.
        raise SettlementError(f"Debt campaign {campaign_id} has no loan terms")
    split = _fee_split(campaign) if release else None
    if split and split.net:
        result = get_gateway().payout(
            idempotency_key=payout_key(campaign.pk),
            amount=split.net,
            currency=campaign.currency,
            destination=initiator_payout_code(campaign.initiator_id),
        )
        if not result.ok:
            raise SettlementError(f"Payout for campaign {campaign.pk} failed: {result.code}")
    with transaction.atomic(durable=True):
        campaign = campaign_lock(campaign_id=campaign_id)
        if not _needs_settlement(campaign):
            return campaign
        # Matched money follows the campaign: released with its pledges (the fee is on both) or
        # returned to its pools.
        matching_campaign_settle(campaign=campaign, release=release)
        if release:
            # With milestones, only the first tranche of the staged pledges goes to the payable now.
            tranches_post_first(campaign=campaign)
            # The delivery holdback leaves the payable before the fee and payout on the rest.
            holdback_keep(campaign=campaign)
            if split:
                _post_fee(campaign, split)
                if split.net:
                    _post_payout(campaign, split.net)
            campaign_set_status(campaign=campaign, to_status=CampaignStatus.SUCCEEDED, reason="funds released")
            if campaign.funding_model == FundingModel.DEBT:
                # The payout above disbursed the loan; its lenders and schedule start today.
                loan_create(campaign=campaign, start_date=timezone.localdate())
        elif campaign.status == CampaignStatus.CLOSING:
            campaign_set_status(campaign=campaign, to_status=CampaignStatus.FAILED, reason="backers refunded")
        campaign.settled_at = timezone.now()
        campaign.save(update_fields=["settled_at", "updated_at"])
        transaction.on_commit(lambda: _enqueue_outcome_emails(campaign_id))
    return campaign


def _enqueue_outcome_emails(campaign_id: int) -> None:
    from pledges.tasks import send_campaign_outcome_emails

    send_campaign_outcome_emails.delay(campaign_id)


def _fee_split(campaign: Campaign) -> FeeSplit | None:
    """Return the fee on what is released at success and what is left for the initiator (None if nothing is)."""
    return fee_split(campaign=campaign, released=amount_released_at_success(campaign=campaign))


def _post_fee(campaign: Campaign, split: FeeSplit) -> None:
    if not split.fee:
        return
    accounts = ledger_accounts_get_or_create(
        specs=fee_account_specs(campaign_id=campaign.pk), currency=campaign.currency
    )
    ledger_post(
        posting=fee_posting(
            campaign_id=campaign.pk,
            fee=split.fee,
            released=split.released,
            bps=split.bps,
            currency=campaign.currency,
            accounts=accounts,
        )
    )


def _post_payout(campaign: Campaign, net: int) -> None:
    ids = {"campaign_id": campaign.pk, "initiator_id": campaign.initiator_id}
    accounts = ledger_accounts_get_or_create(specs=payout_account_specs(**ids), currency=campaign.currency)
    ledger_post(posting=payout_posting(amount=net, currency=campaign.currency, accounts=accounts, **ids))


def pledges_reconcile(*, now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Finish pledges a crash left half done; return how many of each were handled.

    - pending for longer than PLEDGE_PENDING_RECONCILE_AFTER: asked of the gateway by their
      charge key, then held, refunded or failed (so no backer is charged without a held pledge);
      a replacement from a change of amount is swapped in for the pledge it replaces, or failed
      and refunded, never held beside it;
    - refunds the ledger records but the gateway never confirmed (cancel, staff refund, or a
      charge that arrived after its campaign closed): sent again with the same key.
    """
    now = now or timezone.now()
    stale = Pledge.objects.filter(
        status=PledgeStatus.PENDING, created_at__lte=now - settings.PLEDGE_PENDING_RECONCILE_AFTER
    ).order_by("id")[:limit]
    pending = 0
    for pledge in stale:
        pledge_reconcile_pending(pledge=pledge)
        pending += 1
    # Only recent ones: older unconfirmed refunds need an operator (admin: Operations).
    recent = Q(closed_at__gte=now - timedelta(days=7)) | Q(
        status=PledgeStatus.FAILED, created_at__gte=now - timedelta(days=7)
    )
    owing = refunds_unconfirmed().filter(recent).order_by("id")[:limit]
    refunds = 0
    for pledge in owing:
        pledge_send_refund(pledge=pledge)
        refunds += 1
    return {"pending_reconciled": pending, "refunds_sent": refunds}


def settlement_retry(*, campaign: Campaign, actor) -> Campaign:
    """Queue another settlement run for a campaign whose settlement is unfinished (staff only).

    Harmless when a run is already going: settlement is idempotent. Records the audit event
    "settlement_retry". Raises NotAllowed, or Conflict when there is nothing left to settle.
    """
    if actor is None or not actor.has_perm("settlement.retry_operations"):
        raise NotAllowed("Only finance staff can retry settlements.", code="not_allowed")
    campaign = Campaign.objects.get(pk=campaign.pk)
    if not _needs_settlement(campaign):
        raise Conflict("This campaign has nothing left to settle.", code="nothing_to_settle")
    audit_record(actor=actor, action="settlement_retry", obj=campaign)
    _enqueue_settlement([campaign.pk])
    return campaign


def refund_retry(*, pledge: Pledge, actor) -> Pledge:
    """Send an unconfirmed refund to the gateway again (staff only); return the pledge.

    Idempotent at the gateway (the refund's key is the pledge's). Records the audit event
    "refund_retry" once the gateway confirmed. Raises NotAllowed, or Conflict when nothing is
    owed or the gateway refused.
    """
    if actor is None or not actor.has_perm("settlement.retry_operations"):
        raise NotAllowed("Only finance staff can retry refunds.", code="not_allowed")
    pledge = refunds_unconfirmed().filter(pk=pledge.pk).first()
    if pledge is None:
        raise Conflict("This refund is already confirmed, or none is owed.", code="nothing_to_refund")
    result = pledge_send_refund(pledge=pledge)
    if not result.ok:
        raise Conflict(f"The gateway refused the refund: {result.message or result.code}", code="refund_refused")
    audit_record(actor=actor, action="refund_retry", obj=pledge)
    return pledge

"""Lenders' withdrawals: money out of a lender's ledger balance to their bank, through the gateway.

A withdrawal happens in three steps, like settlement's payout to an initiator:

1. ``lender_withdraw`` checks the amount against what the lender may take out, under a lock on
   their balance account row, and stores a pending Withdrawal. What may be taken out is the
   ledger balance minus every pending withdrawal and every pending loan pledge paid from the
   balance (``lending.services.relending``), so two withdrawals (or a withdrawal and a re-lend)
   at once cannot together take more than the balance, although the ledger is only posted later.
2. The gateway pays the amount out, outside any lock, keyed by the withdrawal
   (``escrow.vocabulary.withdrawal_key``), so a retry pays nothing twice.
3. One transaction, holding the withdrawal's row lock and the balance's, posts lender balance ->
   the lender's payouts account and marks it paid; a refusal marks it failed and posts nothing.

A crash between 2 and 3 leaves the withdrawal pending; ``withdrawals_reconcile`` (beat) runs
step 2 again with the same key, which answers with the first payout, and finishes step 3.
"""

import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.db import create_unless_taken
from crowdfund_site.exceptions import Conflict, InvalidInput, PaymentUnavailable
from crowdfund_site.money import CURRENCY_EXPONENTS, check_amount, format_amount
from escrow.gateway import get_gateway
from escrow.ledger import ledger_account_lock, ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import (
    lender_balance_code,
    lender_payout_code,
    withdrawal_account_specs,
    withdrawal_key,
    withdrawal_posting,
)

from ..models import Withdrawal, WithdrawalStatus
from .relending import lender_balance_lock_available

# A pending withdrawal older than this is taken to belong to a request that died mid-way.
RECONCILE_AFTER = datetime.timedelta(minutes=5)
RECONCILE_BATCH = 100


def lender_withdraw(*, lender, currency: str, amount: int, idempotency_key: str) -> Withdrawal:
    """Pay ``amount`` of the lender's balance in ``currency`` out to their bank; return the withdrawal.

    Idempotent by ``idempotency_key`` (per lender): the same key, amount and currency return the
    first withdrawal (finishing it if it is still pending). Raises InvalidInput (not a known
    currency, amount not positive, or more than the lender may withdraw), Conflict (the key was
    used for another withdrawal), each changing nothing; PaymentUnavailable if the gateway
    could not be reached (the withdrawal stays pending and the reconciler finishes it).
    """
    withdrawal = _withdrawal_reserve(lender=lender, currency=currency, amount=amount, idempotency_key=idempotency_key)
    if withdrawal.status != WithdrawalStatus.PENDING:
        return withdrawal
    return _withdrawal_complete(withdrawal=withdrawal, actor=lender)


def _same_or_conflict(existing: Withdrawal, *, currency: str, amount: int) -> Withdrawal:
    if existing.amount != amount or existing.currency != currency:
        raise Conflict(_("This withdrawal key was already used for another withdrawal."), code="idempotency_key_reused")
    return existing


@transaction.atomic(durable=True)
def _withdrawal_reserve(*, lender, currency: str, amount: int, idempotency_key: str) -> Withdrawal:
    """Store a pending withdrawal if the lender may take ``amount`` out; the key's first one if it exists."""
    existing = Withdrawal.objects.filter(lender=lender, idempotency_key=idempotency_key).first()
    if existing is not None:
        return _same_or_conflict(existing, currency=currency, amount=amount)
    if currency not in CURRENCY_EXPONENTS:
        raise InvalidInput(_("Unknown currency."), code="invalid_currency", field="currency")
    check_amount(amount, currency)
    # The lock every withdrawal and re-lend in this currency takes: the check and the pending row are one step.
    available = lender_balance_lock_available(lender_id=lender.pk, currency=currency)
    existing = Withdrawal.objects.filter(lender=lender, idempotency_key=idempotency_key).first()
    if existing is not None:  # the same request, sent at the same moment, got here first
        return _same_or_conflict(existing, currency=currency, amount=amount)
    if amount > available:
        if available <= 0:
            message = _("You have no money to withdraw in %(currency)s.") % {"currency": currency}
        else:
            message = _("You can withdraw at most %(available)s.") % {"available": format_amount(available, currency)}
        raise InvalidInput(message, code="amount_above_balance", field="amount")
    withdrawal = create_unless_taken(
        Withdrawal, lender=lender, currency=currency, amount=amount, idempotency_key=idempotency_key
    )
    if withdrawal is None:  # the same key in another currency, at the same moment
        existing = Withdrawal.objects.get(lender=lender, idempotency_key=idempotency_key)
        return _same_or_conflict(existing, currency=currency, amount=amount)
    audit_record(
        actor=lender, action="lender_withdraw", obj=withdrawal, details={"amount": amount, "currency": currency}
    )
    return withdrawal


def _withdrawal_complete(*, withdrawal: Withdrawal, actor) -> Withdrawal:
    """Pay a pending withdrawal out (again, with its key) and record the outcome; idempotent."""
    result = get_gateway().payout(
        idempotency_key=withdrawal_key(withdrawal.pk),
        amount=withdrawal.amount,
        currency=withdrawal.currency,
        destination=lender_payout_code(withdrawal.lender_id),
    )
    if not result.ok and result.transient:
        raise PaymentUnavailable(
            _("The payout could not be sent just now. It will be retried."), code="payout_unavailable"
        )
    with transaction.atomic(durable=True):
        withdrawal = Withdrawal.objects.select_for_update().get(pk=withdrawal.pk)
        if withdrawal.status != WithdrawalStatus.PENDING:
            return withdrawal
        withdrawal.finished_at = timezone.now()
        if result.ok:
            # Pending becomes posted under the balance's lock, so that a reader under it (a
            # withdrawal or a re-lend being checked) sees the balance and the pending of one moment.
            ledger_account_lock(code=lender_balance_code(withdrawal.lender_id), currency=withdrawal.currency)
            accounts = ledger_accounts_get_or_create(
                specs=withdrawal_account_specs(lender_id=withdrawal.lender_id), currency=withdrawal.currency
            )
            ledger_post(
                posting=withdrawal_posting(
                    withdrawal_id=withdrawal.pk,
                    lender_id=withdrawal.lender_id,
                    amount=withdrawal.amount,
                    currency=withdrawal.currency,
                    accounts=accounts,
                )
            )
            withdrawal.status, withdrawal.gateway_reference = WithdrawalStatus.PAID, result.reference
        else:
            withdrawal.status, withdrawal.error_code = WithdrawalStatus.FAILED, result.code[:50]
        withdrawal.save(update_fields=["status", "gateway_reference", "error_code", "finished_at"])
        audit_record(
            actor=actor,
            action="lender_withdraw_finish",
            obj=withdrawal,
            outcome="done" if result.ok else "failed",
            details={"status": withdrawal.status, "reference": result.reference, "code": result.code},
        )
    return withdrawal


def withdrawals_reconcile(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Finish pending withdrawals left by a crash between the gateway and the ledger; one bounded batch.

    Each is paid out again with its own key (the gateway answers with the first payout, paying
    nothing twice) and then posted or failed like a fresh one. Harmless to run twice.
    """
    cutoff = (now or timezone.now()) - RECONCILE_AFTER
    stale = Withdrawal.objects.filter(status=WithdrawalStatus.PENDING, created_at__lt=cutoff).order_by("created_at")
    counts = {"paid": 0, "failed": 0, "unavailable": 0}
    for withdrawal in stale[:RECONCILE_BATCH]:
        try:
            done = _withdrawal_complete(withdrawal=withdrawal, actor=None)
        except PaymentUnavailable:
            counts["unavailable"] += 1
            continue
        if done.status in counts:
            counts[done.status] += 1
    return counts

"""Repayments: applied to the schedule, paid out to the lenders over running totals, posted to the ledger."""

import datetime
import time

from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.bulk import insert_rows
from crowdfund_site.exceptions import (
    ApplicationError,
    Conflict,
    InvalidInput,
    NotAllowed,
    PaymentDeclined,
    PaymentUnavailable,
)
from crowdfund_site.money import check_amount, format_amount
from escrow.gateway import GatewayResult, get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import (
    repayment_account_specs,
    repayment_charge_key,
    repayment_posting,
    repayment_refund_key,
)

from .. import allocation, schedules
from ..models import (
    PAYABLE_STATUSES,
    Installment,
    LenderPayout,
    Loan,
    LoanLender,
    LoanStatus,
    Repayment,
    RepaymentKind,
)
from .loans import loan_set_status

# Tries of a card charge that fails transiently, with the same key (so at most one charge).
CHARGE_ATTEMPTS = 3


@transaction.atomic(durable=True)
def loan_repay(
    *,
    loan: Loan,
    actor,
    amount: int,
    idempotency_key: str,
    kind: str = RepaymentKind.REPAYMENT,
    due_by: datetime.date | None = None,
    reason: str = "",
) -> Repayment:
    """Pay ``amount`` on a loan and pay it out to the lenders; return the repayment.

    The amount pays, installment by installment from the oldest, late fee, servicing fee,
    interest, then principal. The servicing fee is the platform's; the rest is split among the
    lenders by their share of the principal, principal and income (interest and late fees) each
    over its running total (``lending.allocation``), so each lender's totals stay within one
    minor unit of their exact share and the payout lines sum to the amount minus the fee.
    The split is one ledger transaction, keyed by the repayment: borrower -> the loan's clearing
    account -> each lender's balance, fee -> platform revenue (``escrow.vocabulary``).
    Paying the last of the schedule marks the loan repaid; a late loan with nothing overdue
    left is repaying again.

    With ``due_by`` (an automatic charge) it pays only installments due by that day. ``reason``
    (a staff member's, for a recovery) goes into the audit row.

    Idempotent by ``idempotency_key``: the same key and amount return the first repayment.
    Locks the loan row (lenders and installments are only written under it).
    Raises InvalidInput (amount not positive, or more than is owed), Conflict (the loan does not
    take payments, or the key was used for another amount), changing nothing.
    """
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    existing = _repayment_already_made(loan=loan, idempotency_key=idempotency_key)
    if existing is not None:
        if existing.amount != amount:
            raise Conflict(_("This payment key was already used for another payment."), code="idempotency_conflict")
        return existing
    check_amount(amount, loan.currency)
    _ensure_payable(loan)
    unpaid = [i for i in loan.installments.order_by("number") if i.owed]
    payable = _payable(unpaid, due_by)
    return _loan_apply_payment(
        loan=loan,
        installments=payable,
        actor=actor,
        amount=amount,
        idempotency_key=idempotency_key,
        kind=kind,
        installments_left=len(unpaid) - len(payable),
        reason=reason,
    )


@transaction.atomic(durable=True)
def loan_pay_off(*, loan: Loan, actor, today: datetime.date, idempotency_key: str) -> Repayment:
    """Repay a loan in full early: what is due, all remaining principal, interest and fee to ``today``.

    Installments due by ``today`` are owed in full; the one running on ``today`` charges its
    interest and servicing fee only for the days elapsed of its month (half-even), and the later
    ones none; those installments are changed to say so. The payment is then applied and paid
    out like any repayment (``loan_repay``), and the loan is repaid. Idempotent by
    ``idempotency_key``. Locks the loan row. Raises Conflict if the loan takes no payments or
    the key was used for another payment.
    """
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    existing = _repayment_already_made(loan=loan, idempotency_key=idempotency_key)
    if existing is not None:
        return existing
    _ensure_payable(loan)
    installments = list(loan.installments.order_by("number"))
    period_start = loan.start_date
    waived = []
    for installment in installments:
        if installment.due_date > today:
            period_days = (installment.due_date - period_start).days
            elapsed = min(max((today - period_start).days, 0), period_days)
            interest = schedules.divide_half_even(installment.interest * elapsed, period_days)
            fee = schedules.divide_half_even(installment.fee * elapsed, period_days)
            # What was already paid of it stays paid; only the rest of the month is waived.
            installment.interest = max(interest, installment.interest_paid)
            installment.fee = max(fee, installment.fee_paid)
            waived.append(installment)
            period_start = today  # later months have not begun: nothing accrues on them
        else:
            period_start = installment.due_date
    Installment.objects.bulk_update(waived, ["interest", "fee"])
    unpaid = [i for i in installments if i.owed]
    return _loan_apply_payment(
        loan=loan,
        installments=unpaid,
        actor=actor,
        amount=sum(i.owed for i in unpaid),
        idempotency_key=idempotency_key,
        kind=RepaymentKind.REPAYMENT,
    )


def loan_recovery_record(*, loan: Loan, actor, amount: int, reason: str, idempotency_key: str) -> Repayment:
    """Record money recovered offline on a late or defaulted loan and pay it out to the lenders; return it.

    Staff only (``lending.manage_loans``), with a reason, both in the repayment's audit row. The
    money is applied and paid out like any repayment (``loan_repay``, kind recovery): oldest
    installment first, each lender's running totals within one minor unit of their share; a
    recovery of everything owed repays the loan. Idempotent by ``idempotency_key``. Raises
    NotAllowed (not loan staff), InvalidInput (no reason, amount not positive or above what is
    owed) and Conflict (the loan is not late or defaulted), changing nothing.
    """
    if actor is None or not actor.has_perm("lending.manage_loans"):
        raise NotAllowed(_("Only loan staff can do this."), code="not_loan_staff")
    if not (reason or "").strip():
        raise InvalidInput(_("Give a reason."), code="reason_required", field="reason")
    if loan.status not in {LoanStatus.LATE, LoanStatus.DEFAULTED} and not _repayment_already_made(
        loan=loan, idempotency_key=idempotency_key
    ):
        raise Conflict(_("Only a late or defaulted loan takes recoveries."), code="loan_not_in_recovery")
    return loan_repay(
        loan=loan,
        actor=actor,
        amount=amount,
        idempotency_key=idempotency_key,
        kind=RepaymentKind.RECOVERY,
        reason=reason.strip(),
    )


def loan_repay_by_card(
    *,
    loan: Loan,
    actor,
    amount: int,
    payment_token: str,
    idempotency_key: str,
    due_by: datetime.date | None = None,
) -> Repayment:
    """Charge the borrower's card ``amount`` and apply it to their loan (``loan_repay``); return the repayment.

    Checked first, without locks: the actor is the borrower, the amount is positive and at most
    what is owed (by ``due_by``, if given: see ``loan_repay``), the loan takes payments. The card
    is then charged outside any lock, keyed by loan and ``idempotency_key``, so a retry charges
    nothing twice and records the first charge; then the payment is recorded. If recording is
    refused after all (a payment racing this one left less owed), the charge is refunded and the
    refusal raised; so is the charge an earlier try with the same key (and so the same amount)
    made before it died, when this try is refused. Raises NotAllowed,
    InvalidInput, Conflict, PaymentDeclined (the card was declined) and PaymentUnavailable.
    """
    existing = Repayment.objects.filter(idempotency_key=idempotency_key, loan_id=loan.pk).first()
    if existing is not None:
        return loan_repay(loan=loan, actor=actor, amount=amount, idempotency_key=idempotency_key, due_by=due_by)
    if actor is None or actor.pk != loan.borrower_id:
        raise NotAllowed(_("Only the borrower repays this loan."), code="not_borrower")
    gateway = get_gateway()
    charge_key = repayment_charge_key(loan.pk, idempotency_key)
    try:
        check_amount(amount, loan.currency)
        loan.refresh_from_db()
        _ensure_payable(loan)
        owed = sum(i.owed for i in _payable(list(loan.installments.order_by("number")), due_by))
        if amount > owed:
            raise InvalidInput(
                _("That is more than is owed: at most %(owed)s.") % {"owed": format_amount(owed, loan.currency)},
                code="amount_above_owed",
                field="amount",
            )
    except ApplicationError:
        # A retry whose first try was charged and then died before recording it (a worker killed
        # mid-charge) finds less owed now: that first charge must go back, not stay taken.
        earlier = gateway.find_operation(idempotency_key=charge_key)
        if earlier is not None and earlier.ok:
            gateway.refund(
                idempotency_key=repayment_refund_key(loan.pk, idempotency_key),
                charge_reference=earlier.reference,
                amount=amount,
            )
        raise
    result = GatewayResult(ok=False, transient=True)
    for attempt in range(CHARGE_ATTEMPTS):
        result = gateway.charge(idempotency_key=charge_key, amount=amount, currency=loan.currency, token=payment_token)
        if not result.transient:
            break
        time.sleep(0.05 * (attempt + 1))
    if result.transient:
        raise PaymentUnavailable(_("The payment service is not answering; try again shortly."))
    if not result.ok:
        raise PaymentDeclined(result.message or _("The card was declined."), code=result.code or "card_declined")
    try:
        return loan_repay(loan=loan, actor=actor, amount=amount, idempotency_key=idempotency_key, due_by=due_by)
    except ApplicationError:
        gateway.refund(
            idempotency_key=repayment_refund_key(loan.pk, idempotency_key),
            charge_reference=result.reference,
            amount=amount,
        )
        raise


def _payable(installments: list[Installment], due_by: datetime.date | None) -> list[Installment]:
    """Return the installments a payment may pay: all, or (an automatic charge) those due by ``due_by``."""
    return installments if due_by is None else [i for i in installments if i.due_date <= due_by]


def _repayment_already_made(*, loan: Loan, idempotency_key: str) -> Repayment | None:
    return Repayment.objects.filter(loan=loan, idempotency_key=idempotency_key).first()


def _ensure_payable(loan: Loan) -> None:
    if loan.status not in PAYABLE_STATUSES:
        raise Conflict(
            _("This loan is %(status)s and takes no more payments.") % {"status": loan.get_status_display().lower()},
            code="loan_not_payable",
        )


def _loan_apply_payment(
    *,
    loan: Loan,
    installments: list[Installment],
    actor,
    amount: int,
    idempotency_key: str,
    kind: str,
    installments_left: int = 0,
    reason: str = "",
) -> Repayment:
    """Apply ``amount`` to the locked loan's unpaid ``installments`` (oldest first), pay it out, record it.

    ``installments_left``: how many unpaid installments of the loan are not among them (so a
    payment of all of these does not repay the loan).
    """
    owed = sum(i.owed for i in installments)
    if amount > owed:
        raise InvalidInput(
            _("That is more than is owed: at most %(owed)s.") % {"owed": format_amount(owed, loan.currency)},
            code="amount_above_owed",
            field="amount",
        )
    dues = [
        allocation.InstallmentDue(
            late_fee=i.late_fee - i.late_fee_paid,
            fee=i.fee - i.fee_paid,
            interest=i.interest - i.interest_paid,
            principal=i.principal - i.principal_paid,
        )
        for i in installments
    ]
    now = timezone.now()
    applications = allocation.repayment_apply(amount=amount, dues=dues)
    touched = []
    for application in applications:
        installment = installments[application.index]
        installment.late_fee_paid += application.late_fee
        installment.fee_paid += application.fee
        installment.interest_paid += application.interest
        installment.principal_paid += application.principal
        if not installment.owed:
            installment.paid_at = now
        touched.append(installment)
    Installment.objects.bulk_update(
        touched, ["late_fee_paid", "fee_paid", "interest_paid", "principal_paid", "paid_at"]
    )
    repayment = Repayment.objects.create(
        loan=loan,
        kind=kind,
        amount=amount,
        fee=sum(a.fee for a in applications),
        interest=sum(a.interest for a in applications),
        late_fee=sum(a.late_fee for a in applications),
        principal=sum(a.principal for a in applications),
        idempotency_key=idempotency_key,
        actor=actor if actor is not None and actor.pk else None,
        created_at=now,
    )
    payouts = _repayment_pay_out(loan=loan, repayment=repayment)
    _repayment_post(loan=loan, repayment=repayment, payouts=payouts)
    loan.fees_collected += repayment.fee
    loan.save(update_fields=["principal_distributed", "income_distributed", "fees_collected"])
    audit_record(
        actor=actor,
        action="loan_repay",
        obj=loan,
        reason=reason,
        details={"repayment": repayment.pk, "amount": amount, "kind": kind},
    )
    if amount == owed and not installments_left:
        loan_set_status(loan=loan, to_status=LoanStatus.REPAID, actor=actor, reason="repaid in full")
    elif loan.status == LoanStatus.LATE and not any(i.owed and i.due_date < now.date() for i in installments):
        loan_set_status(loan=loan, to_status=LoanStatus.REPAYING, actor=actor, reason="caught up")
    return repayment


def _repayment_pay_out(*, loan: Loan, repayment: Repayment) -> list[tuple[int, int]]:
    """Write the lenders' payout lines of a repayment, move the running totals; return (lender id, amount)s.

    Plain rows rather than model instances, read and written in a fixed number of statements
    whatever the number of lenders: a loan may have tens of thousands of them.
    """
    shares = list(
        LoanLender.objects.filter(loan=loan)
        .order_by("id")
        .values_list("id", "lender_id", "principal", "principal_received", "income_received")
    )
    weights = [share[2] for share in shares]
    loan.principal_distributed += repayment.principal
    loan.income_distributed += repayment.interest + repayment.late_fee
    principal_parts = allocation.distribution_step(
        shares=weights, paid=[s[3] for s in shares], distributed=loan.principal_distributed
    )
    income_parts = allocation.distribution_step(
        shares=weights, paid=[s[4] for s in shares], distributed=loan.income_distributed
    )
    lines = [
        (repayment.pk, share[0], principal, income)
        for share, principal, income in zip(shares, principal_parts, income_parts, strict=True)
        if principal or income
    ]
    insert_rows(model=LenderPayout, fields=["repayment", "share", "principal", "income"], rows=lines)
    # One UPDATE adds each share's payout line to its running totals. bulk_update's CASE of one
    # WHEN per row is quadratic in the lenders; this reads each line by its unique index instead.
    line = LenderPayout.objects.filter(repayment=repayment, share=OuterRef("pk"))
    paid_shares = LenderPayout.objects.filter(repayment=repayment).values("share_id")
    LoanLender.objects.filter(pk__in=paid_shares).update(
        principal_received=F("principal_received") + Subquery(line.values("principal")[:1]),
        income_received=F("income_received") + Subquery(line.values("income")[:1]),
    )
    lender_of = {share[0]: share[1] for share in shares}
    by_lender: dict[int, int] = {}
    for _repayment_id, share_id, principal, income in lines:
        lender_id = lender_of[share_id]
        by_lender[lender_id] = by_lender.get(lender_id, 0) + principal + income
    return list(by_lender.items())


def _repayment_post(*, loan: Loan, repayment: Repayment, payouts: list[tuple[int, int]]) -> None:
    """Post a repayment's split as one ledger transaction (borrower -> clearing -> lenders, fee -> revenue)."""
    by_lender = dict(payouts)
    accounts = ledger_accounts_get_or_create(
        specs=repayment_account_specs(loan_id=loan.pk, borrower_id=loan.borrower_id, lender_ids=list(by_lender)),
        currency=loan.currency,
    )
    ledger_post(
        posting=repayment_posting(
            repayment_id=repayment.pk,
            loan_id=loan.pk,
            borrower_id=loan.borrower_id,
            amount=repayment.amount,
            fee=repayment.fee,
            payouts=payouts,
            currency=loan.currency,
            accounts=accounts,
        )
    )

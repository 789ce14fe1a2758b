"""Writes of the lending app: loan terms, loans, schedules, repayments and payouts to lenders.

Every function here is the one way its change is made; each runs in one transaction and says what
it locks and raises. Amounts are integers in the loan currency's minor unit. The exact splits
live in ``lending.schedules`` and ``lending.allocation`` (pure functions); this module stores
their results.
"""

import datetime
from fractions import Fraction

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import check_amount, currency_exponent, format_amount
from crowdfund_site.transitions import ensure_transition_allowed
from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import repayment_account_specs, repayment_posting
from pledges.models import COUNTED_STATUSES, Pledge
from projects.models import EDITABLE_STATUSES, Campaign, CampaignStatus, FundingModel

from . import allocation, schedules
from .models import (
    LOAN_TRANSITIONS,
    MAX_GRACE_MONTHS,
    MAX_RATE_BPS,
    MAX_TERM_MONTHS,
    PAYABLE_STATUSES,
    Installment,
    LenderPayout,
    Loan,
    LoanLender,
    LoanStatus,
    LoanStatusChange,
    LoanTerms,
    Repayment,
    RepaymentKind,
    RepaymentType,
)


def loan_terms_validate(*, rate_bps: int, term_months: int, repayment_type: str, grace_months: int) -> None:
    """Raise InvalidInput, naming the field, unless the terms are inside the platform's ranges."""
    checks = [
        ("rate_bps", rate_bps, 0, MAX_RATE_BPS, _("The interest rate must be between 0 % and 36 % a year.")),
        ("term_months", term_months, 1, MAX_TERM_MONTHS, _("The term must be between 1 and 60 months.")),
        ("grace_months", grace_months, 0, MAX_GRACE_MONTHS, _("The grace period must be between 0 and 6 months.")),
    ]
    for field, value, low, high, message in checks:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(message, code=f"invalid_{field}", field=field)
    if grace_months >= term_months:
        raise InvalidInput(
            _("The grace period must be shorter than the term."), code="invalid_grace_months", field="grace_months"
        )
    if repayment_type not in RepaymentType.values:
        raise InvalidInput(_("Unknown repayment type."), code="invalid_repayment_type", field="repayment_type")


@transaction.atomic
def loan_terms_set(
    *, campaign: Campaign, actor, rate_bps: int, term_months: int, repayment_type: str, grace_months: int = 0
) -> LoanTerms:
    """Set (or replace) the loan terms of the initiator's own debt campaign; return them.

    Terms can change only while the campaign can be edited (a draft, or changes requested):
    reviewers approve them and lenders lend on them, so from review on they are fixed. The
    servicing fee is copied from ``LENDING_SERVICING_FEE_BPS`` now, so a later change of the
    setting does not alter terms already set. Locks the campaign row.
    Raises NotAllowed (not the initiator), Conflict (not a debt campaign, or terms fixed) and
    InvalidInput (a value out of range), changing nothing.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed(_("Only the campaign's initiator can set its loan terms."), code="not_initiator")
    if campaign.funding_model != FundingModel.DEBT:
        raise Conflict(_("Only debt campaigns have loan terms."), code="not_debt_campaign")
    if campaign.status not in EDITABLE_STATUSES:
        raise Conflict(
            _("Loan terms are fixed once a campaign is submitted for review; lenders lend on them."),
            code="terms_fixed",
        )
    loan_terms_validate(
        rate_bps=rate_bps, term_months=term_months, repayment_type=repayment_type, grace_months=grace_months
    )
    terms, _created = LoanTerms.objects.update_or_create(
        campaign=campaign,
        defaults={
            "rate_bps": rate_bps,
            "term_months": term_months,
            "repayment_type": repayment_type,
            "grace_months": grace_months,
            "servicing_fee_bps": settings.LENDING_SERVICING_FEE_BPS,
        },
    )
    return terms


def loan_set_status(*, loan: Loan, to_status: str, actor=None, reason: str = "") -> Loan:
    """Move a locked loan to ``to_status`` if the transitions table allows it, recording who and why.

    The caller holds the loan's row lock inside a transaction. Raises Conflict otherwise.
    """
    ensure_transition_allowed(transitions=LOAN_TRANSITIONS, current=loan.status, target=to_status, what="loan")
    LoanStatusChange.objects.create(loan=loan, from_status=loan.status, to_status=to_status, actor=actor, reason=reason)
    loan.status = to_status
    loan.save(update_fields=["status"])
    return loan


@transaction.atomic
def loan_create(*, campaign: Campaign, start_date: datetime.date) -> Loan:
    """Create the loan of a debt campaign that reached its goal, with its lenders and schedule.

    Each counted pledge (held or released) becomes one lender's share; the principal is their
    sum. The schedule's first installment falls due a month after ``start_date``. The loan
    starts repaying at once. Idempotent: a campaign that has its loan gets that loan back.
    Locks the campaign row. Raises Conflict for a campaign that is not a successful debt
    campaign or has no terms.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    existing = Loan.objects.filter(campaign=campaign).first()
    if existing is not None:
        return existing
    if campaign.funding_model != FundingModel.DEBT or campaign.status not in {
        CampaignStatus.CLOSING,
        CampaignStatus.SUCCEEDED,
    }:
        raise Conflict(_("Only a debt campaign that reached its goal becomes a loan."), code="not_funded")
    terms = LoanTerms.objects.filter(campaign=campaign).first()
    if terms is None:
        raise Conflict(_("This debt campaign has no loan terms."), code="no_terms")
    pledges = list(
        Pledge.objects.filter(campaign=campaign, status__in=COUNTED_STATUSES)
        .order_by("id")
        .values("id", "backer_id", "amount")
    )
    if not pledges:
        raise Conflict(_("This campaign has no lenders."), code="no_lenders")
    loan = Loan.objects.create(
        campaign=campaign,
        borrower_id=campaign.initiator_id,
        currency=campaign.currency,
        principal=sum(p["amount"] for p in pledges),
        rate_bps=terms.rate_bps,
        term_months=terms.term_months,
        repayment_type=terms.repayment_type,
        grace_months=terms.grace_months,
        servicing_fee_bps=terms.servicing_fee_bps,
        start_date=start_date,
    )
    LoanLender.objects.bulk_create(
        LoanLender(loan=loan, lender_id=p["backer_id"], pledge_id=p["id"], principal=p["amount"]) for p in pledges
    )
    Installment.objects.bulk_create(
        Installment(
            loan=loan,
            number=row.number,
            due_date=row.due_date,
            principal=row.principal,
            interest=row.interest,
            fee=row.fee,
        )
        for row in loan_schedule(loan=loan)
    )
    loan_set_status(loan=loan, to_status=LoanStatus.REPAYING, reason="funded")
    return loan


def loan_schedule(*, loan: Loan) -> list[schedules.ScheduledInstallment]:
    """Return the schedule a loan's terms give (what ``loan_create`` stores as installments)."""
    return schedules.schedule_build(
        principal=loan.principal,
        rate_bps=loan.rate_bps,
        term_months=loan.term_months,
        repayment_type=loan.repayment_type,
        grace_months=loan.grace_months,
        fee_bps=loan.servicing_fee_bps,
        start=loan.start_date,
    )


@transaction.atomic(durable=True)
def loan_repay(
    *, loan: Loan, actor, amount: int, idempotency_key: str, kind: str = RepaymentKind.REPAYMENT
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
    installments = [i for i in loan.installments.order_by("number") if i.owed]
    return _loan_apply_payment(
        loan=loan, installments=installments, actor=actor, amount=amount, idempotency_key=idempotency_key, kind=kind
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
            interest = schedules.round_half_even(Fraction(installment.interest * elapsed, period_days))
            fee = schedules.round_half_even(Fraction(installment.fee * elapsed, period_days))
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


def _repayment_already_made(*, loan: Loan, idempotency_key: str) -> Repayment | None:
    existing = Repayment.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None and existing.loan_id != loan.pk:
        raise Conflict(_("This payment key was already used for another payment."), code="idempotency_conflict")
    return existing


def _ensure_payable(loan: Loan) -> None:
    if loan.status not in PAYABLE_STATUSES:
        raise Conflict(
            _("This loan is %(status)s and takes no more payments.") % {"status": loan.get_status_display().lower()},
            code="loan_not_payable",
        )


def _loan_apply_payment(
    *, loan: Loan, installments: list[Installment], actor, amount: int, idempotency_key: str, kind: str
) -> Repayment:
    """Apply ``amount`` to the locked loan's unpaid ``installments`` (oldest first), pay it out, record it."""
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
        details={"repayment": repayment.pk, "amount": amount, "kind": kind},
    )
    if amount == owed:
        loan_set_status(loan=loan, to_status=LoanStatus.REPAID, actor=actor, reason="repaid in full")
    elif loan.status == LoanStatus.LATE and not any(i.owed and i.due_date < now.date() for i in installments):
        loan_set_status(loan=loan, to_status=LoanStatus.REPAYING, actor=actor, reason="caught up")
    return repayment


def _repayment_pay_out(*, loan: Loan, repayment: Repayment) -> list[LenderPayout]:
    """Write the lenders' payout lines of a repayment and move their and the loan's running totals."""
    shares = list(LoanLender.objects.filter(loan=loan).order_by("id"))
    weights = [s.principal for s in shares]
    loan.principal_distributed += repayment.principal
    loan.income_distributed += repayment.interest + repayment.late_fee
    principal_parts = allocation.distribution_step(
        shares=weights, paid=[s.principal_received for s in shares], distributed=loan.principal_distributed
    )
    income_parts = allocation.distribution_step(
        shares=weights, paid=[s.income_received for s in shares], distributed=loan.income_distributed
    )
    payouts, changed = [], []
    for share, principal, income in zip(shares, principal_parts, income_parts, strict=True):
        if principal or income:
            share.principal_received += principal
            share.income_received += income
            changed.append(share)
            payouts.append(LenderPayout(repayment=repayment, share=share, principal=principal, income=income))
    LoanLender.objects.bulk_update(changed, ["principal_received", "income_received"], batch_size=1000)
    return LenderPayout.objects.bulk_create(payouts, batch_size=1000)


def _repayment_post(*, loan: Loan, repayment: Repayment, payouts: list[LenderPayout]) -> None:
    """Post a repayment's split as one ledger transaction (borrower -> clearing -> lenders, fee -> revenue)."""
    by_lender: dict[int, int] = {}
    for payout in payouts:
        by_lender[payout.share.lender_id] = by_lender.get(payout.share.lender_id, 0) + payout.amount
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
            payouts=list(by_lender.items()),
            currency=loan.currency,
            accounts=accounts,
        )
    )


def late_fee_for(*, installment_total: int, currency: str) -> int:
    """Return the late fee of a missed installment: the greater of the fixed fee and its share of it."""
    fixed = settings.LENDING_LATE_FEE_FIXED_UNITS * 10 ** currency_exponent(currency)
    return max(fixed, schedules.round_half_even(Fraction(installment_total * settings.LENDING_LATE_FEE_BPS, 10_000)))


def loans_assess_late(*, today: datetime.date, limit: int = 100) -> dict[str, int]:
    """Charge late fees and move loans to late or defaulted as their installments go unpaid; bounded.

    An installment still owed ``LENDING_LATE_GRACE_DAYS`` after its due date takes one late fee
    (``late_fee_for``, paid to the lenders with the rest) and makes a repaying loan late; a late
    loan whose oldest unpaid installment is ``LENDING_DEFAULT_DAYS`` past due defaults. Each loan
    is claimed with ``select_for_update(skip_locked=True)`` in its own transaction, so two workers
    never assess the same loan and running it twice charges nothing twice. Returns counts.
    """
    late_before = today - datetime.timedelta(days=settings.LENDING_LATE_GRACE_DAYS)
    default_before = today - datetime.timedelta(days=settings.LENDING_DEFAULT_DAYS)
    due = (
        Installment.objects.filter(
            loan__status__in=[LoanStatus.REPAYING, LoanStatus.LATE], due_date__lt=late_before, paid_at__isnull=True
        )
        .filter(Q(late_fee=0) | Q(loan__status=LoanStatus.LATE, due_date__lte=default_before))
        .values_list("loan_id", flat=True)
        .distinct()
        .order_by("loan_id")[:limit]
    )
    counts = {"late_fees": 0, "late": 0, "defaulted": 0}
    for loan_id in list(due):
        with transaction.atomic():
            loan = Loan.objects.select_for_update(skip_locked=True).filter(pk=loan_id).first()
            if loan is None or loan.status not in {LoanStatus.REPAYING, LoanStatus.LATE}:
                continue
            missed = list(loan.installments.filter(due_date__lt=late_before, paid_at__isnull=True).order_by("number"))
            for installment in missed:
                if not installment.late_fee:
                    installment.late_fee = late_fee_for(installment_total=installment.total, currency=loan.currency)
                    installment.save(update_fields=["late_fee"])
                    counts["late_fees"] += 1
            if missed and loan.status == LoanStatus.REPAYING:
                loan_set_status(loan=loan, to_status=LoanStatus.LATE, reason=f"installment {missed[0].number} unpaid")
                counts["late"] += 1
            if missed and missed[0].due_date <= default_before:
                loan_set_status(
                    loan=loan,
                    to_status=LoanStatus.DEFAULTED,
                    reason=f"{settings.LENDING_DEFAULT_DAYS} days past due",
                )
                counts["defaulted"] += 1
    return counts


@transaction.atomic
def loan_write_off(*, loan: Loan, actor, reason: str) -> Loan:
    """Mark a late or defaulted loan written off, with the staff member's reason (audited).

    Locks the loan row. Raises NotAllowed (not loan staff), InvalidInput (no reason) and
    Conflict (the loan is not late or defaulted).
    """
    return _loan_staff_transition(
        loan=loan, actor=actor, reason=reason, to_status=LoanStatus.WRITTEN_OFF, action="loan_write_off"
    )


@transaction.atomic
def loan_mark_defaulted(*, loan: Loan, actor, reason: str) -> Loan:
    """Mark a late loan defaulted, with the staff member's reason (audited); it still takes recoveries.

    Locks the loan row. Raises NotAllowed, InvalidInput (no reason) and Conflict (not late).
    """
    return _loan_staff_transition(
        loan=loan, actor=actor, reason=reason, to_status=LoanStatus.DEFAULTED, action="loan_mark_defaulted"
    )


def _loan_staff_transition(*, loan: Loan, actor, reason: str, to_status: str, action: str) -> Loan:
    if actor is None or not actor.has_perm("lending.manage_loans"):
        raise NotAllowed(_("Only loan staff can do this."), code="not_loan_staff")
    if not reason.strip():
        raise InvalidInput(_("Give a reason."), code="reason_required", field="reason")
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    from_status = loan.status
    loan_set_status(loan=loan, to_status=to_status, actor=actor, reason=reason)
    audit_record(actor=actor, action=action, obj=loan, reason=reason, details={"from": from_status, "to": to_status})
    return loan

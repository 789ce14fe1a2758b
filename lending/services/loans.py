"""Loans: made from a funded debt campaign with lenders and schedule; their states, late fees and default."""

import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.exceptions import (
    Conflict,
    InvalidInput,
    NotAllowed,
)
from crowdfund_site.money import currency_exponent
from crowdfund_site.transitions import ensure_transition_allowed
from pledges.models import COUNTED_STATUSES, Pledge
from projects.models import Campaign, CampaignStatus, FundingModel

from .. import schedules
from ..models import (
    LOAN_TRANSITIONS,
    Installment,
    Loan,
    LoanDueWork,
    LoanLender,
    LoanStatus,
    LoanStatusChange,
    LoanTerms,
)
from .due_work import due_work_for


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
    sum. The schedule's first installment falls due a month after ``start_date``; each gets its
    reminders and automatic charge as ``LoanDueWork`` rows. The loan starts repaying at once.
    Idempotent: a campaign that has its loan gets that loan back. Locks the campaign row.
    Raises Conflict for a campaign that is not a successful debt campaign or has no terms.
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
    installments = Installment.objects.bulk_create(
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
    LoanDueWork.objects.bulk_create(due_work_for(installments))
    loan_set_status(loan=loan, to_status=LoanStatus.REPAYING, reason="funded")
    return loan


def loan_schedule(*, loan: Loan) -> list[schedules.ScheduledInstallment]:
    """Return the schedule a loan's terms give (what ``loan_create`` stores as installments)."""
    return loan.terms_schedule()


def late_fee_for(*, installment_total: int, currency: str) -> int:
    """Return the late fee of a missed installment: the greater of the fixed fee and its share of it."""
    fixed = settings.LENDING_LATE_FEE_FIXED_UNITS * 10 ** currency_exponent(currency)
    return max(fixed, schedules.divide_half_even(installment_total * settings.LENDING_LATE_FEE_BPS, 10_000))


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

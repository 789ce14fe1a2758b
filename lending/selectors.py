"""Reads of the lending app shared by pages and the API."""

import datetime
from dataclasses import dataclass

from django.db.models import Prefetch
from django.utils import timezone

from crowdfund_site.exceptions import NotFound
from projects.models import Campaign, FundingModel

from . import schedules
from .models import Installment, Loan, LoanLender, LoanStatus, LoanTerms


@dataclass(frozen=True)
class SchedulePreview:
    """What a lender of ``amount`` would get back under a campaign's terms, if funded on ``start``."""

    terms: LoanTerms
    currency: str
    amount: int
    installments: list[schedules.ScheduledInstallment]

    @property
    def total_interest(self) -> int:
        return sum(i.interest for i in self.installments)

    @property
    def total_back(self) -> int:
        return self.amount + self.total_interest


def loan_terms_of(*, campaign: Campaign) -> LoanTerms | None:
    """Return a debt campaign's loan terms, or None (not a debt campaign, or no terms yet)."""
    if campaign.funding_model != FundingModel.DEBT:
        return None
    return LoanTerms.objects.filter(campaign=campaign).first()


def loan_schedule_preview(*, campaign: Campaign, amount: int, start: datetime.date | None = None) -> SchedulePreview:
    """Return the schedule a lender of ``amount`` would receive: principal and interest per month.

    The servicing fee is paid by the borrower on top of each installment, so it is not in a
    lender's schedule. A lender's actual payments are their share of the whole loan's, which
    can differ from this by a minor unit per payment. Raises NotFound if the campaign has no terms.
    """
    terms = loan_terms_of(campaign=campaign)
    if terms is None:
        raise NotFound("This campaign is not a loan.", code="no_loan_terms")
    installments = schedules.schedule_build(
        principal=amount,
        rate_bps=terms.rate_bps,
        term_months=terms.term_months,
        repayment_type=terms.repayment_type,
        grace_months=terms.grace_months,
        start=start or timezone.localdate(),
    )
    return SchedulePreview(terms=terms, currency=campaign.currency, amount=amount, installments=installments)


def loan_of_borrower_get(*, borrower, loan_id: int) -> Loan:
    """Return the borrower's own loan; raise NotFound for anyone else's (never say it exists)."""
    loan = Loan.objects.filter(pk=loan_id, borrower=borrower).first()
    if loan is None:
        raise NotFound("No such loan.")
    return loan


@dataclass(frozen=True)
class LenderLoanSummary:
    """One loan as its lender sees it in "My loans"; amounts in minor units of ``currency``."""

    share: LoanLender
    currency: str
    status: str
    status_label: str
    principal_lent: int
    principal_received: int
    income_received: int
    next_due_date: datetime.date | None
    days_late: int

    @property
    def outstanding(self) -> int:
        return self.principal_lent - self.principal_received


def lender_loan_summaries(*, user, today: datetime.date | None = None) -> list[LenderLoanSummary]:
    """Return the loans ``user`` lent to, newest first, each with what they lent and received."""
    today = today or timezone.localdate()
    unpaid = Installment.objects.filter(paid_at__isnull=True).order_by("number")
    shares = (
        LoanLender.objects.filter(lender=user)
        .select_related("loan", "loan__campaign")
        .prefetch_related(Prefetch("loan__installments", queryset=unpaid, to_attr="unpaid"))
        .order_by("-loan__created_at", "-loan_id")
    )
    summaries = []
    for share in shares:
        loan = share.loan
        next_due = loan.unpaid[0].due_date if loan.unpaid else None
        running = loan.status in {LoanStatus.REPAYING, LoanStatus.LATE, LoanStatus.DEFAULTED}
        summaries.append(
            LenderLoanSummary(
                share=share,
                currency=loan.currency,
                status=loan.status,
                status_label=loan.get_status_display(),
                principal_lent=share.principal,
                principal_received=share.principal_received,
                income_received=share.income_received,
                next_due_date=next_due,
                days_late=max(0, (today - next_due).days) if next_due and running else 0,
            )
        )
    return summaries

"""Reads of the lending app shared by pages and the API."""

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Prefetch, Sum
from django.utils import timezone

from crowdfund_site.exceptions import NotFound
from escrow.ledger import account_balances
from escrow.vocabulary import lender_balance_code
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, FundingModel

from . import allocation, schedules
from .models import (
    Installment,
    LenderDeclaration,
    LenderPayout,
    LenderProfile,
    Loan,
    LoanLender,
    LoanStatus,
    LoanTerms,
    Withdrawal,
    WithdrawalStatus,
)


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


@dataclass(frozen=True)
class BorrowerSchedulePreview:
    """What a borrower of ``amount`` would repay each month under typed terms, servicing fee included."""

    currency: str
    amount: int
    installments: list[schedules.ScheduledInstallment]

    @property
    def total_interest(self) -> int:
        return sum(i.interest for i in self.installments)

    @property
    def total_fee(self) -> int:
        return sum(i.fee for i in self.installments)

    @property
    def total(self) -> int:
        return self.amount + self.total_interest + self.total_fee


def loan_terms_preview(
    *,
    currency: str,
    amount: int,
    rate_bps: int,
    term_months: int,
    repayment_type: str,
    grace_months: int,
    start: datetime.date | None = None,
) -> BorrowerSchedulePreview:
    """Return the borrower's schedule of ``amount`` under terms not saved yet (validated by the caller).

    The servicing fee is today's ``LENDING_SERVICING_FEE_BPS``, the one the terms would copy.
    """
    installments = schedules.schedule_build(
        principal=amount,
        rate_bps=rate_bps,
        term_months=term_months,
        repayment_type=repayment_type,
        grace_months=grace_months,
        fee_bps=settings.LENDING_SERVICING_FEE_BPS,
        start=start or timezone.localdate(),
    )
    return BorrowerSchedulePreview(currency=currency, amount=amount, installments=installments)


def loan_of_borrower_get(*, borrower, loan_id: int) -> Loan:
    """Return the borrower's own loan; raise NotFound for anyone else's (never say it exists)."""
    loan = Loan.objects.filter(pk=loan_id, borrower=borrower).first()
    if loan is None:
        raise NotFound("No such loan.")
    return loan


@dataclass(frozen=True)
class StatementRow:
    """One payout a lender received, for their yearly statement."""

    day: datetime.date
    campaign: str
    loan_id: int
    currency: str
    principal: int
    income: int


def lender_statement(*, user, year: int) -> list[StatementRow]:
    """Return every payout ``user`` received in ``year`` (by the payout's local date), oldest first."""
    payouts = (
        LenderPayout.objects.filter(share__lender=user, repayment__created_at__year=year)
        .select_related("repayment__loan__campaign")
        .order_by("repayment__created_at", "id")
    )
    return [
        StatementRow(
            day=timezone.localdate(p.repayment.created_at),
            campaign=p.repayment.loan.campaign.title,
            loan_id=p.repayment.loan_id,
            currency=p.repayment.loan.currency,
            principal=p.principal,
            income=p.income,
        )
        for p in payouts
    ]


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
    realised_return: float | None  # XIRR, a year's rate; None until something was received

    @property
    def outstanding(self) -> int:
        return self.principal_lent - self.principal_received

    @property
    def realised_return_percent(self) -> str | None:
        """Return the realised return as a percentage with one decimal, e.g. "8.3"."""
        return None if self.realised_return is None else f"{self.realised_return * 100:.1f}"


def lender_loan_summaries(*, user, today: datetime.date | None = None) -> list[LenderLoanSummary]:
    """Return the loans ``user`` lent to, newest first, each with what they lent and received."""
    today = today or timezone.localdate()
    unpaid = Installment.objects.filter(paid_at__isnull=True).order_by("number")
    received = defaultdict(list)
    for share_id, created_at, principal, income in LenderPayout.objects.filter(share__lender=user).values_list(
        "share_id", "repayment__created_at", "principal", "income"
    ):
        received[share_id].append((timezone.localdate(created_at), principal + income))
    shares = (
        LoanLender.objects.filter(lender=user)
        .select_related("loan", "loan__campaign", "pledge")
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
                realised_return=allocation.xirr(
                    [(timezone.localdate(share.pledge.held_at or share.pledge.created_at), -share.principal)]
                    + received[share.pk]
                ),
            )
        )
    return summaries


def lender_profile_of(*, user) -> tuple[LenderProfile | None, list[LenderDeclaration]]:
    """Return the lender's profile (or None) and their declarations, one per currency."""
    profile = LenderProfile.objects.filter(user=user).first()
    return profile, list(LenderDeclaration.objects.filter(user=user).order_by("currency"))


@dataclass(frozen=True)
class LenderBalance:
    """What the platform holds for a lender in one currency, and what of it they may withdraw or lend now."""

    currency: str
    balance: int
    pending: int  # withdrawals being paid out, not yet posted to the ledger
    relending: int = 0  # loan pledges paid from the balance whose card part is still being charged

    @property
    def available(self) -> int:
        return max(self.balance - self.pending - self.relending, 0)


def _pending_relending(*, lender_id: int, currency: str | None = None):
    """The lender's pending pledges paid partly from their balance (by currency, or in ``currency``)."""
    rows = Pledge.objects.filter(backer_id=lender_id, status=PledgeStatus.PENDING, from_balance__gt=0)
    return rows.filter(currency=currency) if currency else rows


def balance_reserved_total(*, lender_id: int, currency: str) -> int:
    """Return what of the lender's balance in ``currency`` is spoken for but not yet posted to the ledger.

    Withdrawals being paid out, and loan pledges paid from the balance whose card part is still
    being charged: both take their money out of the balance only when they complete. What the
    lender may withdraw or lend is the ledger balance minus this, read under the balance's lock
    (``escrow.ledger.ledger_account_lock``).
    """
    withdrawals = Withdrawal.objects.filter(lender_id=lender_id, currency=currency, status=WithdrawalStatus.PENDING)
    relending = _pending_relending(lender_id=lender_id, currency=currency)
    return (withdrawals.aggregate(total=Sum("amount"))["total"] or 0) + (
        relending.aggregate(total=Sum("from_balance"))["total"] or 0
    )


def lender_balances(*, user) -> list[LenderBalance]:
    """Return the lender's balance per currency (currencies with money or a pending withdrawal), by code."""
    balances = {
        currency: total for (_code, currency), total in account_balances(codes=[lender_balance_code(user.pk)]).items()
    }
    pending: dict[str, int] = defaultdict(int)
    for currency, amount in Withdrawal.objects.filter(lender=user, status=WithdrawalStatus.PENDING).values_list(
        "currency", "amount"
    ):
        pending[currency] += amount
    relending: dict[str, int] = defaultdict(int)
    for currency, amount in _pending_relending(lender_id=user.pk).values_list("currency", "from_balance"):
        relending[currency] += amount
    currencies = sorted(c for c in set(balances) | set(pending) if balances.get(c, 0) or pending.get(c))
    return [
        LenderBalance(currency=c, balance=balances.get(c, 0), pending=pending.get(c, 0), relending=relending.get(c, 0))
        for c in currencies
    ]


def lender_balance_available(*, user, currency: str) -> int:
    """Return what the lender may withdraw or lend now from their balance in ``currency`` (0 if none)."""
    if not user.is_authenticated:
        return 0
    return next((b.available for b in lender_balances(user=user) if b.currency == currency), 0)


def loans_raising(*, lender, currency: str):
    """Return the debt campaigns in ``currency`` taking loans now that ``lender`` could lend to (not their own).

    Ending soonest first, with their terms: what "Re-lend" offers a lender with a balance.
    """
    return (
        Campaign.objects.open_for_pledges()
        .filter(funding_model=FundingModel.DEBT, currency=currency, loan_terms__isnull=False)
        .exclude(initiator_id=lender.pk)
        .select_related("loan_terms")
        .order_by("deadline", "id")
    )


def lender_withdrawals(*, user):
    """Return the lender's withdrawals, newest first."""
    return Withdrawal.objects.filter(lender=user).order_by("-created_at", "-id")

"""Reads of the lending app shared by pages and the API."""

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Prefetch, Sum
from django.utils import timezone

from crowdfund_site.exceptions import NotFound
from escrow.gateway import sandbox_card_last4
from escrow.ledger import account_balances
from escrow.vocabulary import lender_balance_code
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, FundingModel

from . import allocation, schedules
from .models import (
    DueWorkKind,
    Installment,
    LenderDeclaration,
    LenderPayout,
    LenderProfile,
    Loan,
    LoanDueWork,
    LoanLender,
    LoanStatus,
    LoanTerms,
    Repayment,
    RepaymentKind,
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


def borrower_loans(*, borrower):
    """Return the loans ``borrower`` owes, newest first, with their campaigns."""
    return Loan.objects.filter(borrower=borrower).select_related("campaign").order_by("-created_at", "-id")


@dataclass(frozen=True)
class AutopayFailure:
    """One automatic charge that failed: when, of which installment, why, and whether it is tried again."""

    at: datetime.datetime
    installment_number: int
    reason: str
    retry_at: datetime.datetime | None


@dataclass(frozen=True)
class BorrowerLoan:
    """A loan as its borrower sees it: the schedule, what is owed, and automatic repayment."""

    loan: Loan
    installments: list[Installment]
    autopay_failures: list[AutopayFailure]

    @property
    def owed(self) -> int:
        return sum(i.owed for i in self.installments)

    @property
    def next_installment(self) -> Installment | None:
        return next((i for i in self.installments if i.owed), None)

    @property
    def autopay_card_last4(self) -> str:
        """Return the last four digits of the saved test card ("" for another token)."""
        return sandbox_card_last4(self.loan.autopay_token)


def borrower_loan_get(*, borrower, loan_id: int) -> BorrowerLoan:
    """Return the borrower's own loan with its schedule and failed automatic charges, newest failure first.

    Raises NotFound for anyone else's loan (never saying it exists).
    """
    loan = loan_of_borrower_get(borrower=borrower, loan_id=loan_id)
    installments = list(loan.installments.order_by("number"))
    # Each failed charge has its notice row (made at the failure); the charge row says if it is retried.
    charges = {
        w.installment_id: w
        for w in LoanDueWork.objects.filter(installment__loan=loan, kind=DueWorkKind.CHARGE, done_at__isnull=True)
    }
    numbers = {i.pk: i.number for i in installments}
    failures = []
    for notice in LoanDueWork.objects.filter(installment__loan=loan, kind=DueWorkKind.CHARGE_FAILED_NOTICE).order_by(
        "-due_at", "-id"
    ):
        charge = charges.get(notice.installment_id)
        retried = charge is not None and charge.attempt == notice.attempt and not charge.pending_key
        failures.append(
            AutopayFailure(
                at=notice.due_at,
                installment_number=numbers[notice.installment_id],
                reason=notice.last_error,
                retry_at=charge.due_at if retried else None,
            )
        )
    return BorrowerLoan(loan=loan, installments=installments, autopay_failures=failures)


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


class RepaymentNature:
    """Why a repayment pays the lenders what it does (``LenderRepaymentRow.nature``)."""

    INSTALLMENT = "installment"  # one installment, as scheduled
    REST_OF_INSTALLMENT = "rest"  # completes an installment an earlier payment paid in part
    SEVERAL = "several"  # several installments at once (catching up, or paying ahead)
    PARTIAL = "partial"  # leaves part of an installment owed
    EARLY_PAYOFF = "early_payoff"  # the whole remaining principal before its time, interest to that day
    RECOVERY = "recovery"  # money recovered on a late or defaulted loan


@dataclass(frozen=True)
class LenderRepaymentRow:
    """One repayment on a loan as one of its lenders sees it, with the balance left after it."""

    repayment: Repayment
    nature: str
    first_installment: int
    last_installment: int
    installment_owed_after: int  # what is still owed of ``last_installment`` after this payment
    installment_due_date: datetime.date
    interest_waived: int  # early payoff: the schedule's interest the loan no longer pays
    your_principal: int
    your_income: int
    your_principal_left: int  # what of this lender's principal is still to come back after it
    loan_principal_left: int

    @property
    def your_total(self) -> int:
        return self.your_principal + self.your_income


@dataclass(frozen=True)
class LenderLoanHistory:
    """A loan as one of its lenders sees it: their share and every repayment, oldest first."""

    share: LoanLender
    rows: list[LenderRepaymentRow]
    installments: list[Installment]

    @property
    def loan(self) -> Loan:
        return self.share.loan

    @property
    def principal_left(self) -> int:
        return self.share.principal - self.share.principal_received

    @property
    def next_installment(self) -> Installment | None:
        """Return the oldest installment the borrower still owes (None once the loan is paid)."""
        return next((i for i in self.installments if i.owed), None)


def lender_loan_history(*, user, loan_id: int) -> LenderLoanHistory:
    """Return the loan ``user`` lent to with each repayment split and explained; NotFound if they did not.

    Every payment fills the installments oldest first (``allocation.repayment_apply``), so its
    place in the running total of what was paid says which installments it paid: one as
    scheduled, the rest of one, several, part of one, or (paid off early) all that were left.
    """
    share = LoanLender.objects.filter(lender=user, loan_id=loan_id).select_related("loan__campaign").first()
    if share is None:
        raise NotFound("No such loan.")
    loan = share.loan
    installments = list(loan.installments.order_by("number"))
    ends, total = [], 0  # the running total of what is due at the end of each installment
    for installment in installments:
        total += installment.total
        ends.append(total)
    scheduled_interest = sum(row.interest for row in loan.terms_schedule())
    interest_waived = scheduled_interest - sum(i.interest for i in installments)
    payouts = {p.repayment_id: p for p in LenderPayout.objects.filter(share=share)}
    rows, paid, principal_paid, yours_paid = [], 0, 0, 0
    for repayment in Repayment.objects.filter(loan=loan).order_by("created_at", "id"):
        start, paid = paid, paid + repayment.amount
        principal_paid += repayment.principal
        first = next((n for n, end in enumerate(ends) if end > start), len(ends) - 1)
        last = next((n for n, end in enumerate(ends) if end >= paid), len(ends) - 1)
        left_of_last = ends[last] - paid
        payout = payouts.get(repayment.pk)
        your_principal, your_income = (payout.principal, payout.income) if payout else (0, 0)
        yours_paid += your_principal
        began_inside = start > (ends[first - 1] if first else 0)
        paid_off_early = (
            paid == total
            and bool(interest_waived)
            and installments[last].due_date > timezone.localdate(repayment.created_at)
        )
        if repayment.kind == RepaymentKind.RECOVERY:
            nature = RepaymentNature.RECOVERY
        elif paid_off_early and last > first:
            nature = RepaymentNature.EARLY_PAYOFF
        elif left_of_last:
            nature = RepaymentNature.PARTIAL
        elif last > first:
            nature = RepaymentNature.SEVERAL
        elif began_inside:
            nature = RepaymentNature.REST_OF_INSTALLMENT
        else:
            nature = RepaymentNature.INSTALLMENT
        rows.append(
            LenderRepaymentRow(
                repayment=repayment,
                nature=nature,
                first_installment=installments[first].number,
                last_installment=installments[last].number,
                installment_owed_after=left_of_last,
                installment_due_date=installments[last].due_date,
                interest_waived=interest_waived if nature == RepaymentNature.EARLY_PAYOFF else 0,
                your_principal=your_principal,
                your_income=your_income,
                your_principal_left=share.principal - yours_paid,
                loan_principal_left=loan.principal - principal_paid,
            )
        )
    return LenderLoanHistory(share=share, rows=rows, installments=installments)

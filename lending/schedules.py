"""Repayment schedules of loans, computed exactly in integer minor units.

Pure functions: no database, no settings. A schedule is a list of installments, one per month,
each with the principal, interest and servicing fee due. Interest and fee are charged on the
principal outstanding before the installment, at a monthly rate of ``bps / 12`` of a year, and
rounded half-even per installment. Principal is rounded half-even per installment too, and the
last installment takes whatever principal is left, so the principal of a schedule always sums to
the loan exactly and the outstanding balance never increases.
"""

import calendar
import datetime
from typing import NamedTuple

# A year of basis points charged monthly: the monthly rate of ``bps`` is ``bps / MONTHLY_BPS_DENOMINATOR``.
MONTHLY_BPS_DENOMINATOR = 12 * 10_000

ANNUITY = "annuity"
EQUAL_PRINCIPAL = "equal_principal"
BULLET = "bullet"
REPAYMENT_TYPES = (ANNUITY, EQUAL_PRINCIPAL, BULLET)


class ScheduledInstallment(NamedTuple):
    """One month of a schedule; amounts in minor units (a tuple: schedules of many loans are built fast)."""

    number: int  # 1-based
    due_date: datetime.date | None
    principal: int
    interest: int
    fee: int
    balance_after: int  # principal still outstanding once this installment is paid

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fee

    @property
    def to_lenders(self) -> int:
        """Return what the lenders receive of this installment (everything but the fee)."""
        return self.principal + self.interest


def divide_half_even(numerator: int, denominator: int) -> int:
    """Return ``numerator / denominator`` rounded to the nearest integer, ties to even (exact integers)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


def monthly_charge(balance: int, bps: int) -> int:
    """Return a month of ``bps`` a year on ``balance``, rounded half-even."""
    return divide_half_even(balance * bps, MONTHLY_BPS_DENOMINATOR)


def annuity_payment(*, principal: int, rate_bps: int, months: int) -> int:
    """Return the equal monthly payment that repays ``principal`` with interest in ``months``, half-even.

    With the monthly rate r = b / D: P r (1 + r)^m / ((1 + r)^m - 1) = P b (D + b)^m / (D ((D + b)^m - D^m)),
    worked out in integers, exactly.
    """
    if rate_bps == 0:
        return divide_half_even(principal, months)
    d = MONTHLY_BPS_DENOMINATOR
    grown = (d + rate_bps) ** months
    return divide_half_even(principal * rate_bps * grown, d * (grown - d**months))


def schedule_build(
    *,
    principal: int,
    rate_bps: int,
    term_months: int,
    repayment_type: str,
    grace_months: int = 0,
    fee_bps: int = 0,
    start: datetime.date | None = None,
) -> list[ScheduledInstallment]:
    """Return the installments of a loan of ``principal`` minor units.

    The first ``grace_months`` installments pay interest and fee only. ``annuity`` then pays
    equal amounts of principal plus interest (the amount rounded half-even, interest rounded
    half-even, principal the difference); ``equal_principal`` the same principal each month;
    ``bullet`` interest every month and all principal in the last. With ``start``, installment k
    is due k months after it (same day of month, or the month's last day).

    Raise ValueError for arguments outside the domain (the services validate input first).
    """
    _check(principal=principal, rate_bps=rate_bps, term_months=term_months, grace_months=grace_months)
    if repayment_type not in REPAYMENT_TYPES:
        raise ValueError(f"unknown repayment type {repayment_type!r}")
    if fee_bps < 0:
        raise ValueError("fee_bps must not be negative")
    amortising = term_months - grace_months
    if repayment_type == ANNUITY:
        payment = annuity_payment(principal=principal, rate_bps=rate_bps, months=amortising)
    elif repayment_type == EQUAL_PRINCIPAL:
        step = divide_half_even(principal, amortising)
    installments = []
    balance = principal
    for number in range(1, term_months + 1):
        interest = monthly_charge(balance, rate_bps)
        fee = monthly_charge(balance, fee_bps)
        if number == term_months:
            repaid = balance
        elif number <= grace_months or repayment_type == BULLET:
            repaid = 0
        elif repayment_type == ANNUITY:
            repaid = payment - interest
        else:
            repaid = step
        # Rounding can ask for a little more than is left, or (annuity on tiny amounts) for less
        # than nothing: the balance never goes below zero or up.
        repaid = max(0, min(repaid, balance))
        balance -= repaid
        installments.append(
            ScheduledInstallment(
                number=number,
                due_date=add_months(start, number) if start else None,
                principal=repaid,
                interest=interest,
                fee=fee,
                balance_after=balance,
            )
        )
    return installments


def add_months(day: datetime.date, months: int) -> datetime.date:
    """Return the date ``months`` after ``day``: the same day of the month, or that month's last."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    if day.day <= 28:  # every month has it
        return datetime.date(year, month, day.day)
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _check(*, principal: int, rate_bps: int, term_months: int, grace_months: int) -> None:
    if principal <= 0:
        raise ValueError("principal must be positive")
    if rate_bps < 0:
        raise ValueError("rate_bps must not be negative")
    if term_months <= 0:
        raise ValueError("term_months must be positive")
    if not 0 <= grace_months < term_months:
        raise ValueError("grace_months must be at least 0 and less than the term")

"""verify_ledger's lending checks: clean after real repayments, and each one names what broke."""

import uuid

import pytest
from django.db.models import F

from escrow.ledger import Posting, ledger_accounts_get_or_create, ledger_post
from escrow.models import AccountKind, LedgerEntry, TransactionKind
from escrow.vocabulary import (
    PLATFORM_REVENUE,
    borrower_funding_code,
    lender_balance_code,
    loan_clearing_code,
    repayment_distribution_key,
)
from lending.models import Installment, LenderPayout, LoanLender, Repayment
from lending.services import loan_repay
from lending.verification import lending_verify

from .factories import loan_funded

pytestmark = pytest.mark.django_db


def repaid_twice():
    loan = loan_funded(amounts=[70_001, 20_000, 9_999])
    for amount in (4_321, 12_345):
        loan_repay(loan=loan, actor=loan.borrower, amount=amount, idempotency_key=str(uuid.uuid4()))
    return loan


def test_a_repayment_is_one_ledger_transaction_from_the_borrower_to_the_lenders_and_the_platform():
    loan = repaid_twice()
    repayment = Repayment.objects.filter(loan=loan).first()

    entries = {
        (e.account.code, e.amount)
        for e in LedgerEntry.objects.filter(transaction__idempotency_key=repayment_distribution_key(repayment.pk))
    }

    lines = {(lender_balance_code(p.share.lender_id), p.amount) for p in repayment.payouts.all()}
    assert entries == {
        (borrower_funding_code(loan.borrower_id), -repayment.amount),
        (loan_clearing_code(loan.pk), repayment.amount),
        (loan_clearing_code(loan.pk), -repayment.amount),
        (PLATFORM_REVENUE, repayment.fee),
        *lines,
    }
    assert lending_verify() == []


def test_a_schedule_that_no_longer_sums_to_the_loan_is_named():
    loan = repaid_twice()
    Installment.objects.filter(loan=loan, number=12).update(principal=F("principal") + 1)

    assert lending_verify() == [f"Loans whose schedule principal differs from the loan: {loan.pk}"]


def test_payout_lines_that_do_not_sum_to_the_repayment_are_named():
    loan = repaid_twice()
    payout = LenderPayout.objects.filter(repayment__loan=loan).first()
    LenderPayout.objects.filter(pk=payout.pk).update(income=F("income") + 1)

    problems = lending_verify()

    assert f"Repayments whose payouts differ from the repayment minus the fee: {payout.repayment_id}" in problems
    assert any(p.startswith("Repayment transactions that differ from their payout lines") for p in problems)
    assert f"Lenders whose received totals differ from their payout lines: {payout.share_id}" in problems


def test_money_left_in_a_loan_clearing_account_is_named():
    loan = repaid_twice()
    accounts = ledger_accounts_get_or_create(
        specs=[
            (loan_clearing_code(loan.pk), AccountKind.ESCROW),
            (borrower_funding_code(loan.borrower_id), "funding_source"),
        ],
        currency=loan.currency,
    )
    ledger_post(
        posting=Posting(
            kind=TransactionKind.ADJUSTMENT,
            idempotency_key="test:stray",
            reference="test",
            currency=loan.currency,
            legs=[(accounts[borrower_funding_code(loan.borrower_id)], -5), (accounts[loan_clearing_code(loan.pk)], 5)],
        )
    )

    assert lending_verify() == [f"Loans whose clearing account kept money after a transaction: {loan.pk}"]


def test_a_lender_paid_beyond_their_share_is_named():
    loan = repaid_twice()
    share = LoanLender.objects.filter(loan=loan).order_by("principal").first()
    payout = LenderPayout.objects.filter(share=share).first()
    other = LenderPayout.objects.filter(repayment=payout.repayment).exclude(share=share).first()
    # Move two units of one repayment from one lender to another: sums still hold, shares do not.
    LenderPayout.objects.filter(pk=payout.pk).update(income=F("income") + 2)
    LenderPayout.objects.filter(pk=other.pk).update(income=F("income") - 2)
    LoanLender.objects.filter(pk=share.pk).update(income_received=F("income_received") + 2)
    LoanLender.objects.filter(pk=other.share_id).update(income_received=F("income_received") - 2)

    problems = lending_verify()

    both = ", ".join(str(pk) for pk in sorted([share.pk, other.share_id]))
    assert f"Lenders more than one unit from their exact share: {both}" in problems


def test_a_lender_balance_below_zero_is_named():
    loan = repaid_twice()
    assert lending_verify() == []
    lender_id = LoanLender.objects.filter(loan=loan).values_list("lender_id", flat=True).first()
    code = lender_balance_code(lender_id)
    accounts = ledger_accounts_get_or_create(
        specs=[(code, AccountKind.PAYABLE), (PLATFORM_REVENUE, AccountKind.REVENUE)], currency=loan.currency
    )
    held = sum(LedgerEntry.objects.filter(account=accounts[code]).values_list("amount", flat=True))
    ledger_post(  # a withdrawal of a cent more than the lender holds
        posting=Posting(
            kind=TransactionKind.ADJUSTMENT,
            idempotency_key="test:overdrawn",
            reference="test",
            currency=loan.currency,
            legs=[(accounts[code], -(held + 1)), (accounts[PLATFORM_REVENUE], held + 1)],
        )
    )
    assert lending_verify() == [f"Lender balances below zero: {code} {loan.currency} -1"]

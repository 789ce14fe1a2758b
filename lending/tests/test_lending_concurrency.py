"""Repayments of one loan at the same moment, on PostgreSQL: each applied once, in turn."""

from functools import partial

import pytest
from django.db import connection

from crowdfund_site.tests.concurrency import run_together
from lending.models import LoanLender, Repayment
from lending.services import loan_repay
from lending.verification import lending_verify

from .factories import loan_funded

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def test_racing_repayments_are_each_paid_out_once_and_retries_are_not_paid_again():
    loan = loan_funded(amounts=[12_345, 54_321, 33_334])
    calls = [
        partial(loan_repay, loan=loan, actor=loan.borrower, amount=1_000 + i, idempotency_key=f"repay-{i}")
        for i in range(6)
    ] + [partial(loan_repay, loan=loan, actor=loan.borrower, amount=777, idempotency_key="retried")] * 4

    results = run_together(calls)

    assert len({r.pk for r in results[6:]}) == 1  # the four retries got one repayment
    assert Repayment.objects.count() == 7
    loan.refresh_from_db()
    paid = sum(1_000 + i for i in range(6)) + 777
    assert loan.principal_distributed + loan.income_distributed + loan.fees_collected == paid
    assert sum(LoanLender.objects.values_list("principal_received", flat=True)) == loan.principal_distributed
    assert lending_verify() == []

"""Withdrawals at the same moment, on PostgreSQL with real threads: never more than the balance."""

from functools import partial

import pytest
from django.db import connection

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.tests.concurrency import run_together
from escrow.models import GatewayOperation, OperationKind
from lending.models import Withdrawal, WithdrawalStatus
from lending.services import lender_withdraw
from lending.verification import lending_verify

from .test_withdrawals import balance_of, lender_with_balance

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def test_withdrawals_at_once_that_together_exceed_the_balance_pay_only_what_fits():
    lender, balance = lender_with_balance()
    part = balance // 2 + 1  # any two of them are more than the balance
    calls = [
        partial(lender_withdraw, lender=lender, currency="USD", amount=part, idempotency_key=f"w-{i}") for i in range(6)
    ]

    results = run_together(calls)

    paid = [r for r in results if isinstance(r, Withdrawal)]
    refused = [r for r in results if isinstance(r, InvalidInput)]
    assert len(paid) == 1, results
    assert len(refused) == 5, results
    assert {r.code for r in refused} == {"amount_above_balance"}
    assert balance_of(lender) == balance - part
    assert GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).count() == 1
    assert lending_verify() == []


def test_one_withdrawal_sent_many_times_at_once_is_paid_once():
    lender, balance = lender_with_balance()
    calls = [partial(lender_withdraw, lender=lender, currency="USD", amount=balance, idempotency_key="same")] * 5

    results = run_together(calls)

    assert len({r.pk for r in results}) == 1, results
    assert Withdrawal.objects.get().status == WithdrawalStatus.PAID
    assert balance_of(lender) == 0
    assert GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).count() == 1
    assert lending_verify() == []

"""Re-lending at the same moment, on PostgreSQL with real threads: the balance never goes below zero."""

import uuid
from functools import partial

import pytest
from django.db import connection

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.tests.concurrency import run_together
from escrow.models import GatewayOperation, OperationKind
from lending.models import Withdrawal, WithdrawalStatus
from lending.services import lender_withdraw
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_create
from pledges.tests.factories import VISA
from settlement.verification import ledger_verify

from .factories import debt_campaign_live
from .test_withdrawals import balance_of, lender_with_balance

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def relend_call(*, lender, campaign, amount: int, from_balance: int, key: str | None = None, token: str = ""):
    return partial(
        pledge_create,
        backer=lender,
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token=token,
        idempotency_key=key or str(uuid.uuid4()),
        from_balance=from_balance,
    )


def test_re_lends_at_once_that_together_exceed_the_balance_take_only_what_fits():
    lender, balance = lender_with_balance()
    part = balance // 2 + 1  # any two of them are more than the balance
    # One open pledge per campaign: each lend goes to a loan of its own; half pay the rest by card.
    calls = [
        relend_call(
            lender=lender,
            campaign=debt_campaign_live(goal=1_000_000),
            amount=part + (500 if i % 2 else 0),
            from_balance=part,
            token=VISA if i % 2 else "",
        )
        for i in range(6)
    ]

    results = run_together(calls)

    held = [r for r in results if isinstance(r, Pledge)]
    refused = [r for r in results if isinstance(r, InvalidInput)]
    assert len(held) == 1, results
    assert len(refused) == 5, results
    assert {r.code for r in refused} == {"balance_too_small"}
    assert held[0].status == PledgeStatus.HELD
    assert balance_of(lender) == balance - part
    assert ledger_verify() == []


def test_re_lends_and_withdrawals_at_once_never_take_more_than_the_balance():
    lender, balance = lender_with_balance()
    part = balance // 2 + 1
    relends = [
        relend_call(lender=lender, campaign=debt_campaign_live(goal=1_000_000), amount=part, from_balance=part)
        for _ in range(3)
    ]
    withdrawals = [
        partial(lender_withdraw, lender=lender, currency="USD", amount=part, idempotency_key=f"w-{i}") for i in range(3)
    ]

    results = run_together([call for pair in zip(relends, withdrawals, strict=True) for call in pair])

    done = [r for r in results if isinstance(r, Pledge | Withdrawal)]
    refused = [r for r in results if isinstance(r, InvalidInput)]
    assert len(done) == 1, results
    assert len(refused) == 5, results
    assert {r.code for r in refused} <= {"balance_too_small", "amount_above_balance"}
    assert balance_of(lender) == balance - part
    paid = Withdrawal.objects.filter(status=WithdrawalStatus.PAID).count()
    assert GatewayOperation.objects.filter(kind=OperationKind.PAYOUT, destination__startswith="lender:").count() == paid
    assert paid + Pledge.objects.filter(backer=lender, status=PledgeStatus.HELD, from_balance__gt=0).count() == 1
    assert ledger_verify() == []


def test_one_re_lend_sent_many_times_at_once_takes_the_balance_once():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=1_000_000)
    calls = [relend_call(lender=lender, campaign=campaign, amount=balance, from_balance=balance, key="same")] * 5

    results = run_together(calls)

    assert len({r.pk for r in results}) == 1, results
    assert Pledge.objects.get(campaign=campaign).status == PledgeStatus.HELD
    assert balance_of(lender) == 0
    assert ledger_verify() == []

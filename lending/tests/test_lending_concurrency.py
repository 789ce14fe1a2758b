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


def test_workers_running_due_work_together_charge_each_installment_once_and_remind_once():
    import datetime

    from django.core import mail
    from django.utils import timezone

    from lending.services import loan_autopay_set, loans_run_due_work

    loans = [loan_funded(amounts=[10_000, 20_000 + i], term_months=2) for i in range(3)]
    for loan in loans:
        loan_autopay_set(loan=loan, actor=loan.borrower, payment_token="tok_visa")
    due = loans[0].installments.get(number=1).due_date
    week_before = datetime.datetime.combine(
        due - datetime.timedelta(days=7), datetime.time(1), tzinfo=timezone.get_current_timezone()
    )
    on_the_day = week_before + datetime.timedelta(days=7)

    run_together([partial(loans_run_due_work, now=week_before)] * 4)
    run_together([partial(loans_run_due_work, now=on_the_day)] * 4)

    assert len(mail.outbox) == 3  # one 7-day reminder per loan, whichever worker sent it
    assert Repayment.objects.filter(loan__in=loans).count() == 3
    for loan in loans:
        assert loan.installments.get(number=1).owed == 0
    assert lending_verify() == []


def test_two_lends_at_once_by_one_lender_cannot_both_pass_the_reg_cf_limit(settings):
    from accounts.tests.factories import UserFactory
    from crowdfund_site.exceptions import InvalidInput
    from lending.services import lender_profile_update
    from pledges.models import Pledge, PledgeStatus
    from pledges.services import pledge_create
    from pledges.tests.factories import VISA

    from .factories import debt_campaign_live

    settings.LENDING_INVESTOR_POLICY = "reg_cf"
    lender = UserFactory()
    # Income and net worth under $124,000: the limit is the greater of $2,500 and 5 %, so $2,500.
    lender_profile_update(user=lender, accredited=False, currency="USD", annual_income=4_000_000, net_worth=2_000_000)
    campaigns = [debt_campaign_live(goal=1_000_000) for _ in range(4)]
    calls = [
        partial(
            pledge_create,
            backer=lender,
            campaign=campaign,
            amount=200_000,  # $2,000 each: any one fits, no two do
            currency="USD",
            payment_token=VISA,
            idempotency_key=f"lend-{campaign.pk}",
        )
        for campaign in campaigns
    ]

    results = run_together(calls)

    lent = [r for r in results if isinstance(r, Pledge)]
    refused = [r for r in results if isinstance(r, InvalidInput)]
    assert len(lent) == 1
    assert len(refused) == 3
    assert {r.code for r in refused} == {"investor_limit"}
    assert Pledge.objects.filter(backer=lender).count() == 1
    assert Pledge.objects.get(backer=lender).status == PledgeStatus.HELD

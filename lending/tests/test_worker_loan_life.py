"""A loan's whole life on real Celery worker and beat processes, a real Redis broker and PostgreSQL.

Beat closes the debt campaign past its deadline and the worker settles it, which disburses the
loan and makes its schedule. The borrower turns automatic repayment on; then the clock is moved
forward one month at a time (the loan's due dates and due-work rows moved back, so that the next
installment falls due today) and beat's due-work run charges each installment on its due date,
once, and pays it out. At the end the loan is repaid, every lender has their principal back to
the cent and their interest within one minor unit of their exact share, and verify_ledger is OK.
"""

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import F, Sum
from django.utils import timezone

from escrow.ledger import account_balances
from escrow.models import GatewayOperation, OperationKind, OperationStatus
from escrow.vocabulary import LOAN_CHARGE_KEY_PREFIX, autopay_repayment_key, lender_balance_code
from lending.models import Installment, LenderPayout, Loan, LoanDueWork, LoanLender, LoanStatus, Repayment
from lending.services import loan_autopay_set
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from settlement.tests.test_worker import _past_deadline, _wait_for, celery_processes, pytestmark  # noqa: F401
from settlement.verification import ledger_verify

from .factories import debt_campaign_live

pytestmark = [*pytestmark, pytest.mark.slow]

EVERY_SECOND = {
    "CLOSE_DUE_CAMPAIGNS_EVERY_SECONDS": "1",
    "LENDING_DUE_WORK_EVERY_SECONDS": "1",
    "LENDING_ASSESS_LATE_EVERY_SECONDS": "1",
}
# Uneven shares whose exact parts of almost every payment have fractions of a cent.
LENT = [33_334, 33_333, 20_001, 9_999, 3_333]


def _move_clock_to(loan: Loan, day: datetime.date) -> None:
    """Move the loan's time forward so that ``day`` is today: its due dates and due work come nearer."""
    shift = day - timezone.localdate()
    Installment.objects.filter(loan=loan).update(due_date=F("due_date") - shift)
    LoanDueWork.objects.filter(installment__loan=loan, done_at__isnull=True).update(due_at=F("due_at") - shift)


def _assert_every_lender_within_a_unit_of_their_share(loan: Loan) -> None:
    loan.refresh_from_db()
    for share in LoanLender.objects.filter(loan=loan):
        # |received - distributed * share / principal| < 1, in integers.
        assert abs(share.principal_received * loan.principal - loan.principal_distributed * share.principal) < (
            loan.principal
        )
        assert abs(share.income_received * loan.principal - loan.income_distributed * share.principal) < (
            loan.principal
        )


def test_a_funded_loan_is_charged_and_paid_out_month_by_month_until_repaid(celery_processes):  # noqa: F811
    campaign = debt_campaign_live(goal=sum(LENT), rate_bps=1350, term_months=12)
    for amount in LENT:
        pledge_held(campaign=campaign, amount=amount)
    _past_deadline(campaign)
    processes = [celery_processes("worker"), celery_processes("beat", **EVERY_SECOND)]

    _wait_for(
        lambda: Loan.objects.filter(campaign=campaign).exists(),
        what="beat to close the debt campaign and the worker to settle it into a loan",
        processes=processes,
    )
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    loan = Loan.objects.get(campaign=campaign)
    assert loan.principal == sum(LENT)
    assert GatewayOperation.objects.get(kind=OperationKind.PAYOUT).status == OperationStatus.SUCCEEDED  # disbursed
    loan_autopay_set(loan=loan, actor=loan.borrower, payment_token="tok_visa")
    installments = list(loan.installments.order_by("number"))
    assert len(installments) == 12

    for installment in installments:
        installment.refresh_from_db()
        _move_clock_to(loan, installment.due_date)
        _wait_for(
            lambda pk=installment.pk: Installment.objects.filter(pk=pk, paid_at__isnull=False).exists(),
            what=f"beat's due-work run to charge installment {installment.number}",
            processes=processes,
        )
        _assert_every_lender_within_a_unit_of_their_share(loan)

    _wait_for(
        lambda: Loan.objects.filter(pk=loan.pk, status=LoanStatus.REPAID).exists(),
        what="the loan to be repaid",
        processes=processes,
    )
    for process in processes:
        process.stop()
    loan.refresh_from_db()
    repayments = list(Repayment.objects.filter(loan=loan).order_by("id"))
    # One charge per installment, on its own key: nothing charged twice, nothing missed.
    assert [r.idempotency_key for r in repayments] == [autopay_repayment_key(i.pk, 1) for i in installments]
    charges = GatewayOperation.objects.filter(
        kind=OperationKind.CHARGE, idempotency_key__startswith=LOAN_CHARGE_KEY_PREFIX
    )
    assert charges.count() == 12
    assert charges.aggregate(total=Sum("amount"))["total"] == sum(i.total for i in installments)
    for repayment in repayments:
        paid_out = LenderPayout.objects.filter(repayment=repayment).aggregate(total=Sum(F("principal") + F("income")))
        assert paid_out["total"] == repayment.amount - repayment.fee
    assert loan.principal_distributed == loan.principal
    assert loan.income_distributed == sum(i.interest for i in installments)
    shares = list(LoanLender.objects.filter(loan=loan).order_by("id"))
    assert [s.principal_received for s in shares] == LENT  # every lender's principal back, to the cent
    assert sum(s.income_received for s in shares) == loan.income_distributed
    _assert_every_lender_within_a_unit_of_their_share(loan)
    balances = account_balances(codes=[lender_balance_code(s.lender_id) for s in shares])
    for share in shares:
        assert balances[(lender_balance_code(share.lender_id), "USD")] == share.principal + share.income_received
    assert ledger_verify() == []
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()

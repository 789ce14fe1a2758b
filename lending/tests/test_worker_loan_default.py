"""A loan that is not repaid, on real Celery worker and beat processes, a real Redis broker and PostgreSQL.

Beat closes two debt campaigns and the worker settles them into loans. Neither borrower pays.
The clock is moved forward (each loan's due dates moved back): at 15 days past due the grace
period still holds; one day more, beat's late-loan assessment charges the late fee and marks
the loan late (the other loan, a day further on, shows the run happened); at 120 days past due
it defaults. Staff then record two recoveries; each is paid out to the lenders in proportion to
what they lent, to the cent over the running total, and the second, of everything owed, repays
the loan. The borrower's and the lenders' pages say so at every step; verify_ledger is OK.
"""

import datetime
from fractions import Fraction
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import F, Sum
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import StaffFactory
from escrow.ledger import account_balances
from escrow.vocabulary import lender_balance_code
from lending.models import Installment, LenderPayout, Loan, LoanLender, LoanStatus, RepaymentKind
from lending.services import late_fee_for, loan_recovery_record
from pledges.tests.factories import pledge_held
from settlement.tests.test_worker import _past_deadline, _wait_for, celery_processes, pytestmark  # noqa: F401
from settlement.verification import ledger_verify

from .factories import debt_campaign_live

pytestmark = [*pytestmark, pytest.mark.slow]

EVERY_SECOND = {"CLOSE_DUE_CAMPAIGNS_EVERY_SECONDS": "1", "LENDING_ASSESS_LATE_EVERY_SECONDS": "1"}
# Uneven shares whose exact parts of a recovery have fractions of a cent.
LENT = [33_334, 33_333, 20_001, 9_999, 3_333]


def _days_past_due(loan: Loan, days: int) -> None:
    """Move the loan's time forward so that its first installment fell due ``days`` days ago."""
    first = Installment.objects.get(loan=loan, number=1)
    shift = first.due_date - (timezone.localdate() - datetime.timedelta(days=days))
    Installment.objects.filter(loan=loan).update(due_date=F("due_date") - shift)


def _page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def _assert_paid_out_pro_rata(loan: Loan) -> None:
    """Assert each lender is within one minor unit of their exact share of everything paid out so far."""
    loan.refresh_from_db()
    shares = list(LoanLender.objects.filter(loan=loan))
    assert sum(s.principal_received for s in shares) == loan.principal_distributed
    assert sum(s.income_received for s in shares) == loan.income_distributed
    for share in shares:
        exact_principal = Fraction(loan.principal_distributed * share.principal, loan.principal)
        exact_income = Fraction(loan.income_distributed * share.principal, loan.principal)
        assert abs(share.principal_received - exact_principal) < 1
        assert abs(share.income_received - exact_income) < 1


def test_an_unpaid_loan_goes_late_then_defaults_and_recoveries_are_paid_out_to_the_cent(celery_processes):  # noqa: F811
    campaign = debt_campaign_live(goal=sum(LENT), rate_bps=1350, term_months=12)
    pledges = [pledge_held(campaign=campaign, amount=amount) for amount in LENT]
    pacer_campaign = debt_campaign_live(goal=5_000)
    pledge_held(campaign=pacer_campaign, amount=5_000)
    _past_deadline(campaign, pacer_campaign)
    processes = [celery_processes("worker"), celery_processes("beat", **EVERY_SECOND)]

    _wait_for(
        lambda: Loan.objects.filter(campaign__in=[campaign, pacer_campaign]).count() == 2,
        what="beat to close both debt campaigns and the worker to settle them into loans",
        processes=processes,
    )
    loan = Loan.objects.get(campaign=campaign)
    pacer = Loan.objects.get(campaign=pacer_campaign)
    borrower, lender = Client(), Client()
    borrower.force_login(loan.borrower)
    lender.force_login(pledges[0].backer)
    borrowed, lent = f"/loans/borrowed/{loan.pk}/", f"/loans/lent/{loan.pk}/"

    # The grace period: 15 days after the due date nothing happens yet. The pacer loan, a day
    # later on its schedule, going late shows that beat's assessment ran over both.
    _days_past_due(loan, settings.LENDING_LATE_GRACE_DAYS)
    _days_past_due(pacer, settings.LENDING_LATE_GRACE_DAYS + 1)
    _wait_for(
        lambda: Loan.objects.filter(pk=pacer.pk, status=LoanStatus.LATE).exists(),
        what="beat's late-loan assessment to run",
        processes=processes,
    )
    loan.refresh_from_db()
    assert loan.status == LoanStatus.REPAYING
    assert not Installment.objects.filter(loan=loan, late_fee__gt=0).exists()

    _days_past_due(loan, settings.LENDING_LATE_GRACE_DAYS + 1)
    _wait_for(
        lambda: Loan.objects.filter(pk=loan.pk, status=LoanStatus.LATE).exists(),
        what="beat's assessment to mark the loan late",
        processes=processes,
    )
    first = Installment.objects.get(loan=loan, number=1)
    # 5 % of an installment of about 94.00 is less than the fixed 15.00.
    assert first.late_fee == late_fee_for(installment_total=first.total - first.late_fee, currency="USD") == 15_00
    assert Installment.objects.filter(loan=loan, late_fee__gt=0).count() == 1
    assert ">Late<" in _page(borrower, borrowed)
    assert "$15.00" in _page(borrower, borrowed)  # the late fee in the schedule
    assert ">Late<" in _page(lender, lent)

    _days_past_due(loan, settings.LENDING_DEFAULT_DAYS)
    _wait_for(
        lambda: Loan.objects.filter(pk=loan.pk, status=LoanStatus.DEFAULTED).exists(),
        what="beat's assessment to mark the loan defaulted",
        processes=processes,
    )
    for process in processes:
        process.stop()
    # Installments 1 to 4 are more than 15 days past due by now: each took one late fee.
    assert list(
        Installment.objects.filter(loan=loan, late_fee__gt=0).order_by("number").values_list("number", flat=True)
    ) == [1, 2, 3, 4]
    assert ">Defaulted<" in _page(borrower, borrowed)
    assert ">Defaulted<" in _page(lender, lent)

    staff = StaffFactory()
    loan.refresh_from_db()
    recovery = loan_recovery_record(
        loan=loan, actor=staff, amount=12_345, reason="collection agency, first payment", idempotency_key="rec-1"
    )
    assert recovery.kind == RepaymentKind.RECOVERY
    lines = LenderPayout.objects.filter(repayment=recovery)
    assert lines.aggregate(total=Sum(F("principal") + F("income")))["total"] == 12_345 - recovery.fee
    _assert_paid_out_pro_rata(loan)
    assert loan.status == LoanStatus.DEFAULTED
    audit = AuditEvent.objects.get(action="loan_repay", actor=staff)
    assert audit.reason == "collection agency, first payment"
    page = _page(lender, lent)
    assert 'data-nature="recovery"' in page
    assert ">Defaulted<" in page
    mine = lines.get(share__lender=pledges[0].backer)
    assert f"${mine.amount // 100:,}.{mine.amount % 100:02d}" in page  # what this lender received of it

    owed = sum(i.owed for i in Installment.objects.filter(loan=loan))
    loan_recovery_record(loan=loan, actor=staff, amount=owed, reason="the rest, settled", idempotency_key="rec-2")
    loan.refresh_from_db()
    assert loan.status == LoanStatus.REPAID
    assert loan.principal_distributed == loan.principal
    shares = list(LoanLender.objects.filter(loan=loan).order_by("id"))
    assert [s.principal_received for s in shares] == LENT  # every lender's principal back, to the cent
    _assert_paid_out_pro_rata(loan)
    installments = Installment.objects.filter(loan=loan)
    assert loan.income_distributed == sum(i.interest + i.late_fee for i in installments)
    balances = account_balances(codes=[lender_balance_code(s.lender_id) for s in shares])
    for share in shares:
        assert balances[(lender_balance_code(share.lender_id), "USD")] == share.principal + share.income_received
    assert ">Repaid<" in _page(borrower, borrowed)
    assert ">Repaid<" in _page(lender, lent)
    assert ledger_verify() == []
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()

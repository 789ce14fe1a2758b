"""The lender's page of one loan: each repayment split, what it paid explained, the balance left after it."""

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.money import format_amount
from lending.models import LoanLender
from lending.selectors import RepaymentNature, lender_loan_history
from lending.services import loan_pay_off, loan_repay

from .factories import loan_funded

pytestmark = pytest.mark.django_db


def usd(minor: int) -> str:
    return format_amount(minor, "USD")


@pytest.fixture
def repaid_in_four_ways():
    """A loan of two lenders paid: installment 1, part of 2, the rest of 2, then all the rest early."""
    loan = loan_funded(amounts=[70_001, 29_999], term_months=4)
    first, second, third, fourth = loan.installments.order_by("number")
    scheduled_interest_after_two = third.interest + fourth.interest
    loan_repay(loan=loan, actor=loan.borrower, amount=first.total, idempotency_key="one")
    loan_repay(loan=loan, actor=loan.borrower, amount=1_000, idempotency_key="part")
    loan_repay(loan=loan, actor=loan.borrower, amount=second.total - 1_000, idempotency_key="rest")
    # Before the schedule's start: no interest has accrued on the last two months.
    loan_pay_off(loan=loan, actor=loan.borrower, today=timezone.localdate(), idempotency_key="early")
    return loan, second, scheduled_interest_after_two


def test_the_lender_sees_each_repayment_explained_and_their_balance_left(client, repaid_in_four_ways):
    loan, second, waived = repaid_in_four_ways
    share = LoanLender.objects.get(loan=loan, principal=70_001)
    client.force_login(share.lender)

    listing = client.get("/loans/").content.decode()
    page = client.get(f"/loans/lent/{loan.pk}/").content.decode()

    assert f'href="/loans/lent/{loan.pk}/"' in listing
    assert "Installment 1, as scheduled." in page
    assert f"A partial payment: {usd(second.total - 1_000)} of installment 2" in page
    assert "you received less than scheduled" in page
    assert "The rest of installment 2, which an earlier payment paid in part." in page
    assert f"the loan pays {usd(waived)} less interest than scheduled" in page
    assert page.count('data-nature="') == 4
    share.refresh_from_db()
    assert share.principal_received == 70_001
    assert f'<dd id="your-principal-left">{usd(0)}</dd>' in page


def test_every_row_splits_the_payment_and_the_lenders_parts_add_up_to_it_to_the_cent(repaid_in_four_ways):
    loan, _second, _waived = repaid_in_four_ways
    histories = [lender_loan_history(user=s.lender, loan_id=loan.pk) for s in LoanLender.objects.filter(loan=loan)]

    natures = [row.nature for row in histories[0].rows]
    assert natures == [
        RepaymentNature.INSTALLMENT,
        RepaymentNature.PARTIAL,
        RepaymentNature.REST_OF_INSTALLMENT,
        RepaymentNature.EARLY_PAYOFF,
    ]
    for rows in zip(*(h.rows for h in histories), strict=True):
        repayment = rows[0].repayment
        assert repayment.principal + repayment.interest + repayment.late_fee + repayment.fee == repayment.amount
        assert sum(r.your_total for r in rows) == repayment.amount - repayment.fee
    for history in histories:
        lefts = [row.your_principal_left for row in history.rows]
        assert lefts == sorted(lefts, reverse=True)  # the balance left never grows
        assert lefts[-1] == 0
        assert history.rows[-1].loan_principal_left == 0
        assert sum(r.your_total for r in history.rows) == (
            history.share.principal_received + history.share.income_received
        )


def test_nobody_but_a_lender_sees_the_loan_page(client, repaid_in_four_ways):
    loan, _second, _waived = repaid_in_four_ways
    client.force_login(UserFactory())
    assert client.get(f"/loans/lent/{loan.pk}/").status_code == 404
    client.force_login(loan.borrower)
    assert client.get(f"/loans/lent/{loan.pk}/").status_code == 404


def test_a_loan_without_repayments_says_so(client):
    loan = loan_funded(amounts=[10_000], term_months=3)
    client.force_login(LoanLender.objects.get(loan=loan).lender)

    page = client.get(f"/loans/lent/{loan.pk}/").content.decode()

    assert "No repayment yet." in page
    assert f'<dd id="your-principal-left">{usd(10_000)}</dd>' in page


def test_the_lender_and_borrower_pages_read_in_chinese(client, settings, repaid_in_four_ways):
    loan, _second, waived = repaid_in_four_ways
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    client.force_login(LoanLender.objects.get(loan=loan, principal=29_999).lender)

    lent = client.get(f"/loans/lent/{loan.pk}/").content.decode()

    assert "第 1 期，按计划还款。" in lent
    assert "部分还款：第 2 期" in lent
    assert f"这笔贷款支付的利息比计划少 {usd(waived)}" in lent
    client.force_login(loan.borrower)
    borrowed = client.get(f"/loans/borrowed/{loan.pk}/").content.decode()
    assert "自动还款" in borrowed
    assert "还款计划" in borrowed

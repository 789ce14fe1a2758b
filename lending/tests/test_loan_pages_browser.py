"""In headless Chromium: after two repayments (installment 1, then part of installment 2) the
borrower sees what is still owed and the rest of installment 2 as the next payment, with its
date; each lender sees their principal back, what is left of it and the next due date, and the
two repayments split to the cent. English and Chinese. Screenshots go to test-artifacts/."""

from fractions import Fraction

import pytest

from crowdfund_site.money import format_amount
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS
from lending.models import Installment, LenderPayout, LoanLender
from lending.services import loan_repay

from .factories import loan_funded
from .test_lending_browser import log_in

pytestmark = [*BROWSER_MARKS, pytest.mark.django_db(transaction=True)]

LENT = [60_001, 39_999]
PART = 3_000  # paid of installment 2


def usd(minor: int) -> str:
    return format_amount(minor, "USD")


@pytest.fixture
def repaid_loan():
    """A 1,000.00 loan of two lenders: installment 1 paid, then 30.00 of installment 2."""
    loan = loan_funded(amounts=LENT)
    first = Installment.objects.get(loan=loan, number=1)
    loan_repay(loan=loan, actor=loan.borrower, amount=first.total, idempotency_key="first")
    loan_repay(loan=loan, actor=loan.borrower, amount=PART, idempotency_key="part")
    return loan


@pytest.mark.parametrize(
    ("language", "paid", "repaying"), [("en", "Paid", "Repaying"), ("zh-hans", "已还清", "还款中")]
)
def test_the_borrower_sees_what_is_owed_and_the_rest_of_installment_2_next(
    live_server, browser, repaid_loan, language, paid, repaying
):
    loan = repaid_loan
    first, second = Installment.objects.filter(loan=loan).order_by("number")[:2]
    owed = sum(i.owed for i in Installment.objects.filter(loan=loan))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, loan.borrower, f"/loans/borrowed/{loan.pk}/", language)

    page.wait_for_selector("#loan-owed")
    assert page.inner_text("#loan-owed") == usd(owed)
    assert owed == sum(i.total for i in Installment.objects.filter(loan=loan)) - first.total - PART
    next_payment = page.locator("#loan-next-payment")
    assert usd(second.total - PART) in next_payment.inner_text()
    assert next_payment.locator("time").get_attribute("datetime").startswith(second.due_date.isoformat())
    assert repaying in page.inner_text(".loan-summary")
    rows = page.locator("#borrower-schedule tbody tr")
    assert rows.count() == 12
    assert rows.nth(0).locator("td").last.inner_text() == paid
    assert rows.nth(1).locator("td").last.inner_text() == usd(second.total - PART)
    assert rows.nth(2).locator("td").last.inner_text() == usd(Installment.objects.get(loan=loan, number=3).total)
    page.screenshot(path=str(ARTIFACTS / f"lending-borrowed-loan-{language}.png"), full_page=True)


@pytest.mark.parametrize(("language", "repaying"), [("en", "Repaying"), ("zh-hans", "还款中")])
def test_each_lender_sees_their_principal_back_and_left_and_the_next_due_date(
    live_server, browser, repaid_loan, language, repaying
):
    loan = repaid_loan
    loan.refresh_from_db()
    second = Installment.objects.get(loan=loan, number=2)
    for share in LoanLender.objects.filter(loan=loan).order_by("id"):
        page = browser.new_page(viewport={"width": 390, "height": 844})
        log_in(page, live_server, share.lender, f"/loans/lent/{loan.pk}/", language)
        page.wait_for_selector("#your-principal-left")

        # Their share of the principal repaid so far, to within a cent of exact.
        exact = Fraction(loan.principal_distributed * share.principal, loan.principal)
        assert abs(share.principal_received - exact) < 1
        summary = page.inner_text(".loan-summary")
        assert usd(share.principal) in summary
        assert usd(share.principal_received) in summary
        assert usd(share.income_received) in summary
        assert page.inner_text("#your-principal-left") == usd(share.principal - share.principal_received)
        assert page.locator("#loan-next-due time").get_attribute("datetime").startswith(second.due_date.isoformat())
        assert repaying in summary
        rows = page.locator("#loan-repayments tbody tr")
        assert rows.count() == 2
        left = share.principal
        for index, payout in enumerate(LenderPayout.objects.filter(share=share).order_by("repayment_id")):
            left -= payout.principal
            cells = rows.nth(index).locator("td")
            assert usd(payout.repayment.amount) in cells.nth(1).inner_text()
            assert usd(payout.amount) in cells.nth(5).inner_text()  # what this lender received of it
            assert cells.nth(6).inner_text() == usd(left)  # their principal still to come back
        assert left == share.principal - share.principal_received
        page.screenshot(path=str(ARTIFACTS / f"lending-lent-loan-{share.pk}-{language}.png"), full_page=True)
        page.close()

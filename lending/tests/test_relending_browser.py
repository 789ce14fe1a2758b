"""In headless Chromium: a lender withdraws part of their balance from My loans and sees the withdrawal
listed; and re-lends the rest to another loan without a card. Screenshots go to test-artifacts/."""

import pytest

from crowdfund_site.tests.browser import BROWSER_MARKS
from pledges.models import Pledge, PledgeStatus
from settlement.verification import ledger_verify

from .factories import debt_campaign_live
from .test_lending_browser import log_in, shot
from .test_withdrawals import balance_of, lender_with_balance

pytestmark = BROWSER_MARKS


def dollars(minor: int) -> str:
    return f"${minor / 100:,.2f}"


@pytest.mark.django_db(transaction=True)
def test_a_lender_withdraws_part_of_their_balance_from_my_loans_and_sees_it_listed(live_server, browser):
    lender, balance = lender_with_balance()
    part = balance // 3  # what is left differs from what was withdrawn
    page = browser.new_page(viewport={"width": 390, "height": 844})
    log_in(page, live_server, lender, "/loans/")
    page.wait_for_selector("#balances-heading")
    assert page.locator("#my-withdrawals").count() == 0

    page.fill("#withdraw-USD", f"{part / 100:.2f}")
    page.click("button:has-text('Withdraw to my bank')")
    page.wait_for_selector(f"text={dollars(part)} is on its way to your bank.")

    row = page.locator("#my-withdrawals tbody tr").first
    assert dollars(part) in row.inner_text()
    assert "Paid" in row.inner_text()
    balance_row = page.locator("section[aria-labelledby=balances-heading] tbody tr").first
    assert dollars(balance - part) in balance_row.inner_text()
    shot(page, "03-withdrawal-listed")
    assert balance_of(lender) == balance - part
    assert ledger_verify() == []


@pytest.mark.django_db(transaction=True)
def test_a_lender_re_lends_their_balance_to_another_loan_without_a_card(live_server, browser):
    lender, balance = lender_with_balance()
    loan = debt_campaign_live(goal=1_000_000)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, lender, "/loans/")

    page.click("a:has-text('Re-lend')")
    page.wait_for_selector(f"text={dollars(balance)} available")
    page.click(f"a[href='/pledges/new/{loan.slug}/?from_balance=1']")
    assert page.is_checked("#id_pay_from_balance")
    page.fill("#id_amount", f"{balance / 100:.2f}")
    page.click("button[type=submit]:has-text('Pledge')")
    page.wait_for_url("**/pledges/*/?thanks=1")
    shot(page, "04-re-lent")

    pledge = Pledge.objects.get(campaign=loan)
    assert (pledge.status, pledge.from_balance) == (PledgeStatus.HELD, balance)
    assert balance_of(lender) == 0
    assert ledger_verify() == []

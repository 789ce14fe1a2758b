"""Re-lending on the pages: "Re-lend" on My loans, and "pay from my balance" on a loan's lend form."""

import re

import pytest
from django.conf import settings
from django.utils import translation

from pledges.models import Pledge, PledgeStatus
from projects.tests.factories import LiveCampaignFactory
from settlement.verification import ledger_verify

from .factories import debt_campaign_live
from .test_withdrawals import balance_of, lender_with_balance

pytestmark = pytest.mark.django_db


def form_key(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)


def dollars(minor: int) -> str:
    return f"${minor / 100:,.2f}"


def test_the_lend_form_offers_a_lender_their_balance_and_no_one_else(client):
    lender, balance = lender_with_balance()
    loan = debt_campaign_live(goal=100_000)
    client.force_login(lender)

    page = client.get(f"/pledges/new/{loan.slug}/").content.decode()
    assert f"Pay from my balance ({dollars(balance)} available)" in page
    assert f'name="pay_from_balance" id="id_pay_from_balance" value="{balance}"' in page
    # Not where a balance cannot pay: a campaign that is no loan.
    assert "Pay from my balance" not in client.get(f"/pledges/new/{LiveCampaignFactory().slug}/").content.decode()
    client.force_login(loan.initiator)  # no balance
    assert "Pay from my balance" not in client.get(f"/pledges/new/{loan.slug}/").content.decode()


def test_a_lender_lends_their_balance_from_the_form_without_a_card(client):
    lender, balance = lender_with_balance()
    loan = debt_campaign_live(goal=100_000)
    client.force_login(lender)
    key = form_key(client.get(f"/pledges/new/{loan.slug}/").content.decode())
    body = {"amount": f"{balance / 100:.2f}", "pay_from_balance": str(balance), "idempotency_key": key, "reward": ""}

    response = client.post(f"/pledges/new/{loan.slug}/", body)
    again = client.post(f"/pledges/new/{loan.slug}/", body)  # a double submit

    assert response.status_code == again.status_code == 302
    pledge = Pledge.objects.get(campaign=loan)
    assert (pledge.status, pledge.from_balance, pledge.card_amount) == (PledgeStatus.HELD, balance, 0)
    assert balance_of(lender) == 0
    assert ledger_verify() == []


def test_a_loan_above_the_balance_asks_for_a_card_for_the_rest(client):
    lender, balance = lender_with_balance()
    loan = debt_campaign_live(goal=100_000)
    client.force_login(lender)
    key = form_key(client.get(f"/pledges/new/{loan.slug}/").content.decode())
    body = {"amount": f"{(balance + 500) / 100:.2f}", "pay_from_balance": str(balance), "idempotency_key": key}

    response = client.post(f"/pledges/new/{loan.slug}/", body)

    assert response.status_code == 200
    assert f"Your balance pays {dollars(balance)}: enter a card for the other $5.00." in response.content.decode()
    assert not Pledge.objects.filter(campaign=loan).exists()

    card = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
    response = client.post(f"/pledges/new/{loan.slug}/", body | card)

    assert response.status_code == 302
    pledge = Pledge.objects.get(campaign=loan)
    assert (pledge.from_balance, pledge.card_amount) == (balance, 500)
    assert ledger_verify() == []


def test_a_balance_that_shrank_since_the_form_was_shown_is_explained_and_nothing_is_taken(client):
    lender, balance = lender_with_balance()
    loan = debt_campaign_live(goal=100_000)
    client.force_login(lender)
    key = form_key(client.get(f"/pledges/new/{loan.slug}/").content.decode())
    offered = balance + 1_000  # as if shown before a withdrawal

    response = client.post(
        f"/pledges/new/{loan.slug}/",
        {"amount": f"{offered / 100:.2f}", "pay_from_balance": str(offered), "idempotency_key": key},
    )

    assert response.status_code == 200
    assert f"Your balance has only {dollars(balance)} available to lend." in response.content.decode()
    assert balance_of(lender) == balance
    assert not Pledge.objects.filter(campaign=loan).exists()


def test_my_loans_links_to_re_lend_which_lists_other_raising_loans_and_ticks_the_balance(client):
    lender, balance = lender_with_balance()
    loan = debt_campaign_live(goal=100_000)
    own = debt_campaign_live(goal=100_000)
    own.initiator = lender
    own.save(update_fields=["initiator"])
    not_a_loan = LiveCampaignFactory()
    client.force_login(lender)

    my_loans = client.get("/loans/").content.decode()
    assert 'href="/loans/relend/#relend-USD">Re-lend</a>' in my_loans

    page = client.get("/loans/relend/").content.decode()
    assert f"{dollars(balance)} available" in page
    assert loan.title in page
    assert f'href="/pledges/new/{loan.slug}/?from_balance=1"' in page
    assert own.title not in page
    assert not_a_loan.title not in page

    form = client.get(f"/pledges/new/{loan.slug}/?from_balance=1").content.decode()
    assert f'value="{balance}" checked' in form


def test_the_balance_choice_and_re_lend_read_in_chinese(client):
    lender, _balance = lender_with_balance()
    loan = debt_campaign_live(goal=100_000)
    client.force_login(lender)

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    # The pages switch this thread to Chinese; leaving the block gives the tests after it English back.
    with translation.override("en"):
        form = client.get(f"/pledges/new/{loan.slug}/").content.decode()
        my_loans = client.get("/loans/").content.decode()
        relend = client.get("/loans/relend/").content.decode()

    assert "用我的余额支付" in form
    assert "再出借" in my_loans
    assert "再出借您的余额" in relend

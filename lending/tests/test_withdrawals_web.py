"""Withdrawals on "My loans" and through the API."""

import re

import pytest
from django.conf import settings

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from lending.models import Withdrawal, WithdrawalStatus
from lending.services import lender_withdraw
from lending.verification import lending_verify

from .test_withdrawals import balance_of, lender_with_balance

pytestmark = pytest.mark.django_db


def form_key(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)


def test_a_lender_sees_their_balance_and_withdraws_it_from_my_loans(client):
    lender, balance = lender_with_balance()
    client.force_login(lender)
    page = client.get("/loans/").content.decode()
    assert "Your balance" in page
    assert f"at most ${balance / 100:,.2f}" in page

    body = {"currency": "USD", "amount": f"{(balance - 100) / 100:.2f}", "idempotency_key": form_key(page)}
    response = client.post("/loans/withdraw/", body, follow=True)
    again = client.post("/loans/withdraw/", body, follow=True)  # a double submit

    assert response.status_code == again.status_code == 200
    assert "is on its way to your bank" in response.content.decode()
    assert "$1.00" in response.content.decode()  # what is left
    assert Withdrawal.objects.get().status == WithdrawalStatus.PAID
    assert balance_of(lender) == 100
    assert "Your withdrawals" in response.content.decode()
    assert lending_verify() == []


def test_withdrawing_more_than_the_balance_is_explained_on_the_page_and_moves_nothing(client):
    lender, balance = lender_with_balance()
    client.force_login(lender)
    key = form_key(client.get("/loans/").content.decode())

    response = client.post("/loans/withdraw/", {"currency": "USD", "amount": "999999", "idempotency_key": key})

    assert response.status_code == 400
    assert "You can withdraw at most" in response.content.decode()
    assert not Withdrawal.objects.exists()
    assert balance_of(lender) == balance


def test_withdrawing_in_a_currency_without_a_balance_is_explained(client):
    lender, _balance = lender_with_balance()
    client.force_login(lender)

    response = client.post("/loans/withdraw/", {"currency": "EUR", "amount": "1", "idempotency_key": "web-k"})

    assert response.status_code == 400
    assert "You have no money to withdraw in EUR." in response.content.decode()
    assert not Withdrawal.objects.exists()


def test_the_balance_and_withdraw_form_in_chinese(client):
    lender, _balance = lender_with_balance()
    client.force_login(lender)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    page = client.get("/loans/").content.decode()

    assert "你的余额" in page
    assert "提现到我的银行账户" in page
    lender_withdraw(lender=lender, currency="USD", amount=1, idempotency_key="w")
    page = client.get("/loans/").content.decode()
    assert "你的提现" in page
    assert "已拨付" in page


def test_someone_with_no_balance_sees_no_withdraw_form(client):
    client.force_login(UserFactory())
    assert "Your balance" not in client.get("/loans/").content.decode()


def test_the_api_withdraws_by_key_and_lists_withdrawals():
    lender, balance = lender_with_balance()
    client = api_client(lender)

    created = client.post(
        "/api/v1/lending/withdrawals/", {"currency": "USD", "amount": 250}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    retried = client.post(
        "/api/v1/lending/withdrawals/", {"currency": "USD", "amount": 250}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    reused = client.post(
        "/api/v1/lending/withdrawals/", {"currency": "USD", "amount": 251}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert created.status_code == 201, created.content
    assert created.json()["status"] == "paid"
    assert retried.json() == created.json()
    assert_error(reused, 409, "idempotency_key_reused")
    assert balance_of(lender) == balance - 250
    listed = client.get("/api/v1/lending/withdrawals/").json()
    assert [w["id"] for w in listed["results"]] == [created.json()["id"]]
    assert api_client(UserFactory()).get("/api/v1/lending/withdrawals/").json()["results"] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"currency": "USD", "amount": 0}, None),
        ({"currency": "USD", "amount": 10**9}, "amount_above_balance"),
        ({"currency": "EUR", "amount": 1}, "amount_above_balance"),
        ({"currency": "XXX", "amount": 1}, None),
        ({"currency": "USD", "amount": "1"}, None),
    ],
)
def test_a_bad_api_withdrawal_is_a_400_and_moves_nothing(body, code):
    lender, balance = lender_with_balance()
    response = api_client(lender).post("/api/v1/lending/withdrawals/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_error(response, 400, code)
    assert not Withdrawal.objects.exists()
    assert balance_of(lender) == balance


def test_the_api_wants_a_key_and_a_signed_in_lender():
    lender, _balance = lender_with_balance()
    body = {"currency": "USD", "amount": 1}
    assert_error(api_client(lender).post("/api/v1/lending/withdrawals/", body, format="json"), 400)
    assert api_client().post(
        "/api/v1/lending/withdrawals/", body, format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).status_code in {401, 403}
    assert not Withdrawal.objects.exists()

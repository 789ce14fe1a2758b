"""One log-in policy for every path that checks a password: the web form, the admin and the API token."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.api.testing import api_client, assert_error

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _policy(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 5
    settings.LOGIN_FAILURES_PER_ADDRESS = 30
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900


def _web_login(client, username: str, password: str, **extra):
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, **extra)


def _token(username: str, password: str, **extra):
    return api_client().post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


def test_blocked_on_the_web_the_token_endpoint_refuses_even_the_right_password(client):
    UserFactory(username="ada")
    for _ in range(5):
        assert "Please enter a correct username" in _web_login(client, "ada", "wrong").content.decode()

    response = _token("ada", PASSWORD)

    body = assert_error(response, 429, "too_many_attempts")
    assert "Too many failed log-in attempts" in body["detail"]
    assert 0 < int(response["Retry-After"]) <= 900
    assert "token" not in body
    # From another address the owner still gets a token.
    assert _token("ada", PASSWORD, REMOTE_ADDR="10.0.0.9").status_code == 200


def test_blocked_through_the_token_endpoint_the_web_form_refuses(client):
    UserFactory(username="bea")
    for _ in range(5):
        assert_error(_token("bea", "wrong"), 401, "invalid_credentials")

    response = _web_login(client, "bea", PASSWORD)

    assert response.status_code == 200
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_token_endpoint_allows_five_guesses_per_account_and_address():
    UserFactory(username="cy")
    statuses = [_token("cy", f"guess-{n}").status_code for n in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    assert_error(_token("cy", PASSWORD), 429, "too_many_attempts")


def test_a_success_forgets_the_accounts_failures():
    UserFactory(username="dee")
    for _ in range(4):
        _token("dee", "wrong")
    assert _token("dee", PASSWORD).status_code == 200
    assert [_token("dee", "wrong").status_code for _ in range(5)] == [401] * 5


def test_failures_from_one_address_block_it_for_every_account_on_every_path(client, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    UserFactory(username="eve")
    for n in range(2):
        _token(f"guess{n}", "wrong")
    for n in range(2):
        _web_login(client, f"other{n}", "wrong")

    assert_error(_token("eve", PASSWORD), 429, "too_many_attempts")
    assert "Too many failed log-in attempts" in _web_login(client, "eve", PASSWORD).content.decode()


def test_the_admin_log_in_shares_the_policy(client):
    StaffFactory(username="fay", is_superuser=True)
    for _ in range(5):
        _token("fay", "wrong")

    response = client.post(reverse("admin:login"), {"username": "fay", "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 200
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_refused_attempts_do_not_count_against_the_address(settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 8
    UserFactory(username="gus")
    for _ in range(5):
        _token("gus", "wrong")
    # The account is blocked here; hammering it further is refused without counting as failures...
    for _ in range(10):
        assert_error(_token("gus", "wrong"), 429, "too_many_attempts")
    # ...so the address has 3 failures left for other accounts.
    UserFactory(username="hal")
    assert [_token("hal", "wrong").status_code for _ in range(4)] == [401, 401, 401, 429]


def _reset(client, email: str, **extra):
    return client.post(reverse("accounts:password_reset"), {"email": email}, **extra)


def test_reset_e_mails_are_limited_per_e_mail_address_known_or_not(client, settings):
    settings.PASSWORD_RESETS_PER_EMAIL = 3
    UserFactory(username="ida", email="ida@example.com")
    assert [_reset(client, "ida@example.com").status_code for _ in range(3)] == [302] * 3
    assert len(mail.outbox) == 3

    refused = _reset(client, "IDA@example.com", REMOTE_ADDR="10.0.0.7")
    unknown = [_reset(client, "nobody@example.com").status_code for _ in range(4)]

    assert refused.status_code == 200
    assert "Too many password reset requests" in refused.content.decode()
    assert len(mail.outbox) == 3
    assert unknown == [302, 302, 302, 200]  # the same answers: they tell nothing about accounts


def test_reset_e_mails_are_limited_per_client_address(client, settings):
    settings.PASSWORD_RESETS_PER_ADDRESS = 4
    for n in range(4):
        assert _reset(client, f"someone{n}@example.com").status_code == 302
    assert "Too many password reset requests" in _reset(client, "another@example.com").content.decode()
    assert _reset(client, "another@example.com", REMOTE_ADDR="10.0.0.8").status_code == 302


def test_the_refusals_speak_the_visitors_language(client):
    UserFactory(username="jo")
    for _ in range(5):
        _web_login(client, "jo", "wrong", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "登录失败次数过多" in _web_login(client, "jo", PASSWORD, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()


def test_behind_a_proxy_each_client_is_counted_by_its_own_address(client, settings):
    settings.NUM_PROXIES = 1
    UserFactory(username="kim")
    for _ in range(5):
        _web_login(client, "kim", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert_error(_token("kim", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7"), 429, "too_many_attempts")
    # Another client behind the same proxy (the same REMOTE_ADDR) is not blocked with it.
    assert _token("kim", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 200
    # A client cannot pick its address: only the address our proxy appended counts.
    assert_error(_token("kim", PASSWORD, HTTP_X_FORWARDED_FOR="10.0.0.1, 198.51.100.7"), 429, "too_many_attempts")

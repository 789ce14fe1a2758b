"""The pledge pages read amounts as people write them, and show a large or comma-separated one back before charging."""

import pytest
from django.urls import reverse

from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_held

pytestmark = pytest.mark.django_db

CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


@pytest.fixture
def logged_in(client, backer):
    client.force_login(backer)
    return client


def _pledge(client, campaign, amount: str, **fields):
    data = {**CARD, "reward": "", "amount": amount, "idempotency_key": "form-key-1", **fields}
    return client.post(reverse("pledges:create", kwargs={"slug": campaign.slug}), data)


def test_a_decimal_comma_is_refused_not_read_as_a_hundred_times_the_amount(logged_in, live_campaign):
    response = _pledge(logged_in, live_campaign, "1,50")
    assert response.status_code == 200
    errors = response.context["form"].errors["amount"]
    assert any("1.50" in error and "point" in error for error in errors), errors
    assert not Pledge.objects.exists()


def test_an_amount_with_a_thousands_separator_is_shown_back_and_charged_only_once_confirmed(logged_in, live_campaign):
    response = _pledge(logged_in, live_campaign, "1,500")
    page = response.content.decode()
    assert "You are pledging <strong>$1,500.00</strong>" in page
    assert "Confirm: pledge $1,500.00" in page
    assert 'name="confirmed_amount" value="150000"' in page
    assert 'name="idempotency_key" value="form-key-1"' in page  # the same key, so one pledge however often sent
    assert not Pledge.objects.exists()

    response = _pledge(logged_in, live_campaign, "1,500", confirmed_amount="150000")
    pledge = Pledge.objects.get()
    assert response.status_code == 302
    assert (pledge.amount, pledge.status) == (150_000, PledgeStatus.HELD)


def test_a_large_amount_without_separators_is_confirmed_too(logged_in, live_campaign):
    response = _pledge(logged_in, live_campaign, "2500")
    assert "You are pledging <strong>$2,500.00</strong>" in response.content.decode()
    assert not Pledge.objects.exists()


def test_changing_the_amount_after_the_confirmation_asks_again(logged_in, live_campaign):
    response = _pledge(logged_in, live_campaign, "15,000", confirmed_amount="150000")
    assert "You are pledging <strong>$15,000.00</strong>" in response.content.decode()
    assert not Pledge.objects.exists()


def test_a_small_plain_amount_is_charged_at_once(logged_in, live_campaign):
    assert _pledge(logged_in, live_campaign, "25.50").status_code == 302
    assert Pledge.objects.get().amount == 2_550


def test_changing_a_pledge_to_a_large_amount_is_confirmed_before_anything_is_charged(logged_in, backer, live_campaign):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=2_500)
    url = reverse("pledges:change_amount", kwargs={"pk": old.pk})
    data = {**CARD, "amount": "1,200", "idempotency_key": "change-1"}
    response = logged_in.post(url, data)
    assert "You are pledging <strong>$1,200.00</strong>" in response.content.decode()
    assert Pledge.objects.get() == old

    response = logged_in.post(url, {**data, "confirmed_amount": "120000"})
    assert response.status_code == 302
    old.refresh_from_db()
    assert (old.status, old.amount) == (PledgeStatus.HELD, 120_000)  # the same pledge, changed
    assert Pledge.objects.get() == old


def test_the_confirmation_and_the_decimal_comma_refusal_in_chinese(logged_in, live_campaign, settings):
    logged_in.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = _pledge(logged_in, live_campaign, "1,500").content.decode()
    assert "您将支持 <strong>$1,500.00</strong>" in page
    assert "确认：支持 $1,500.00" in page
    assert "小数请用小数点书写，例如 1.50" in _pledge(logged_in, live_campaign, "1,50").content.decode()

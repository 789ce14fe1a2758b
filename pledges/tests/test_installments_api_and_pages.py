"""Pay over time through the API and the pledge form: bad input is a clear 400 and changes nothing."""

import pytest
from django.core.cache import cache

from crowdfund_site.api.testing import api_client, assert_error
from escrow.models import GatewayOperation
from pledges.models import InstallmentStatus, Pledge, PledgeInstallment
from pledges.tests.factories import new_key
from projects.models import AddOn

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def _post(client, campaign, **body):
    data = {"amount": 15_000, "currency": "USD", "payment_token": "tok_visa", "pay_over_time": True, **body}
    return client.post(f"/api/v1/campaigns/{campaign.pk}/pledges/", data, format="json", HTTP_IDEMPOTENCY_KEY=new_key())


def _nothing_changed(campaign) -> None:
    assert not Pledge.objects.exists()
    assert not PledgeInstallment.objects.exists()
    assert not GatewayOperation.objects.exists()
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 0


def test_a_pledge_paid_over_time_answers_with_its_schedule(backer, live_campaign):
    response = _post(api_client(backer), live_campaign, amount=15_002)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["amount"] == 15_002
    assert body["installment_plan"] is True
    assert [(i["number"], i["amount"], i["status"]) for i in body["installments"]] == [
        (1, 5_002, InstallmentStatus.PAID),
        (2, 5_000, InstallmentStatus.SCHEDULED),
        (3, 5_000, InstallmentStatus.SCHEDULED),
    ]
    assert body["installments"][1]["due_at"] < body["installments"][2]["due_at"]
    listed = api_client(backer).get("/api/v1/pledges/").json()["results"][0]
    assert len(listed["installments"]) == 3


def test_below_the_minimum_is_a_400_naming_it(backer, live_campaign):
    body = assert_error(_post(api_client(backer), live_campaign, amount=14_999), 400, "below_pay_over_time_minimum")
    assert "150.00" in body["detail"]
    _nothing_changed(live_campaign)


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_pay_over_time_must_be_a_boolean(backer, live_campaign, value):
    assert_error(_post(api_client(backer), live_campaign, pay_over_time=value), 400)
    _nothing_changed(live_campaign)


def test_with_add_ons_it_is_refused(backer, live_campaign):
    addon = AddOn.objects.create(campaign=live_campaign, title="Sticker", price=500)
    response = _post(api_client(backer), live_campaign, addons=[{"addon": addon.pk, "quantity": 1}])
    assert_error(response, 400, "pay_over_time_not_offered")
    _nothing_changed(live_campaign)


def test_a_plan_pledge_cannot_be_changed_through_the_api(backer, live_campaign):
    pledge_id = _post(api_client(backer), live_campaign).json()["id"]
    response = api_client(backer).post(
        f"/api/v1/pledges/{pledge_id}/change/",
        {"amount": 20_000, "payment_token": "tok_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )
    assert_error(response, 409, "installment_plan_fixed")
    assert Pledge.objects.get(pk=pledge_id).amount == 15_000


def _form(campaign, key, **fields):
    return {
        "reward": "",
        "amount": "150.00",
        "card_number": "4242 4242 4242 4242",
        "expiry": "12/40",
        "cvc": "123",
        "idempotency_key": key,
        "pay_over_time": "on",
        **fields,
    }


def test_the_pledge_form_offers_installments_and_the_pledge_page_shows_the_schedule(client, backer, live_campaign):
    client.force_login(backer)
    url = f"/pledges/new/{live_campaign.slug}/"
    page = client.get(url)
    assert b'name="pay_over_time"' in page.content

    response = client.post(url, _form(live_campaign, new_key()))
    pledge = Pledge.objects.get()
    assert response.status_code == 302
    assert pledge.installment_plan
    detail = client.get(f"/pledges/{pledge.pk}/").content.decode()
    assert "Paid in 3 monthly installments" in detail
    assert detail.count("$50.00") >= 3


def test_the_form_below_the_minimum_shows_why_and_charges_nothing(client, backer, live_campaign):
    client.force_login(backer)
    response = client.post(f"/pledges/new/{live_campaign.slug}/", _form(live_campaign, new_key(), amount="99.00"))
    assert response.status_code == 200
    assert "can be paid in 3 monthly installments" in response.content.decode()
    _nothing_changed(live_campaign)

"""Managing a pledge through the API and the pages: one pledge per campaign, changed in place."""

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from pledges.models import Pledge, PledgeChange
from pledges.tests.factories import pledge_held
from projects.tests.factories import RewardTierFactory
from settlement.tests.checks import invariant_problems, net_charged

pytestmark = pytest.mark.django_db

CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/40", "cvc": "123"}


def _change(client, pledge, key="change-1", **body):
    return client.post(f"/api/v1/pledges/{pledge.pk}/change/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _pledge(client, campaign, key, amount=2_500):
    body = {"amount": amount, "currency": campaign.currency, "payment_token": "tok_visa"}
    return client.post(f"/api/v1/campaigns/{campaign.pk}/pledges/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


# --- API ------------------------------------------------------------------------------------------


def test_a_second_open_pledge_through_the_api_is_a_clear_409(backer, live_campaign):
    client = api_client(backer)
    assert _pledge(client, live_campaign, "first").status_code == 201
    body = assert_error(_pledge(client, live_campaign, "second"), 409, "already_backing")
    assert "Manage your pledge" in body["detail"]
    assert Pledge.objects.count() == 1
    assert _pledge(client, live_campaign, "first").status_code == 201  # the first request's retry still answers


def test_the_change_endpoint_changes_the_same_pledge_and_lists_its_history(backer, live_campaign):
    mug = RewardTierFactory(campaign=live_campaign, minimum_amount=4_000, quantity_limit=3)
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_500)
    client = api_client(backer)

    response = _change(client, pledge, amount=4_000, reward=mug.pk, payment_token="tok_visa")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["amount"], body["reward"]["id"]) == (pledge.pk, 4_000, mug.pk)
    assert [(c["from_amount"], c["to_amount"], c["to_reward"]) for c in body["changes"]] == [(2_500, 4_000, mug.pk)]
    assert _change(client, pledge, amount=4_000, reward=mug.pk, payment_token="tok_visa").json() == body  # replay
    assert_error(_change(client, pledge, amount=5_000, payment_token="tok_visa"), 409, "idempotency_key_reused")

    response = _change(client, pledge, key="change-2", amount=3_000, reward=None)  # down: no card needed
    assert response.status_code == 200, response.content
    assert len(response.json()["changes"]) == 2
    assert client.get(f"/api/v1/pledges/{pledge.pk}/").json()["amount"] == 3_000
    assert net_charged(pledge) == 3_000
    assert invariant_problems() == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 0}, 400, None),
        ({"amount": 10**15}, 400, None),
        ({}, 400, "nothing_to_change"),
        ({"amount": 2_500}, 400, "same_amount"),
        ({"amount": 9_000}, 400, "payment_token_required"),
        ({"reward": 999_999}, 400, "invalid_reward"),
        ({"amount": 9_000, "payment_token": "tok_chargeDeclined"}, 402, None),
    ],
)
def test_bad_changes_get_a_clear_error_and_change_nothing(backer, live_campaign, body, status, code):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_500)
    assert_error(_change(api_client(backer), pledge, **body), status, code)
    pledge.refresh_from_db()
    assert pledge.amount == 2_500
    assert not PledgeChange.objects.filter(status="done").exists()


def test_another_backers_pledge_cannot_be_changed(backer, live_campaign):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_500)
    assert_error(_change(api_client(UserFactory()), pledge, amount=3_000, payment_token="tok_visa"), 404)


def test_the_schema_documents_the_change_endpoint():
    schema = api_client().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    if schema.status_code != 200:
        schema = api_client().get("/api/schema/", HTTP_ACCEPT="application/json")
    text = schema.content.decode()
    assert "pledges_change" in text
    assert "/pledges/{id}/change/" in text


# --- Pages ------------------------------------------------------------------------------------------


def test_the_campaign_page_says_manage_your_pledge_to_its_backer_only(client, backer, live_campaign):
    url = live_campaign.get_absolute_url()
    assert "Back this project" in client.get(url).content.decode()
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_500)
    client.force_login(backer)
    page = client.get(url).content.decode()
    assert "Manage your pledge" in page
    assert reverse("pledges:manage", kwargs={"pk": pledge.pk}) in page
    assert "Back this project" not in page
    client.force_login(UserFactory())
    assert "Back this project" in client.get(url).content.decode()


def test_the_pledge_form_points_a_backer_to_their_pledge(client, backer, live_campaign):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_500)
    client.force_login(backer)
    page = client.get(reverse("pledges:create", kwargs={"slug": live_campaign.slug})).content.decode()
    assert "You already back this campaign with $25.00" in page
    assert reverse("pledges:manage", kwargs={"pk": pledge.pk}) in page


def test_manage_raises_and_lowers_the_same_pledge_and_shows_the_history(client, backer, live_campaign):
    jacket = RewardTierFactory(campaign=live_campaign, title="Jacket", minimum_amount=9_000)
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_500)
    client.force_login(backer)
    url = reverse("pledges:manage", kwargs={"pk": pledge.pk})

    page = client.get(url, {"reward": jacket.pk}).content.decode()
    assert 'value="90.00"' in page  # the amount the reward takes, offered
    response = client.post(url, {"amount": "90", "reward": jacket.pk, "idempotency_key": "k1"})
    assert "Enter the card that pays the difference." in response.content.decode()
    response = client.post(url, {"amount": "90", "reward": jacket.pk, "idempotency_key": "k1", **CARD}, follow=True)
    page = response.content.decode()
    assert "Only the difference, $65.00, was charged." in page
    assert "$25.00 → $90.00" in page

    response = client.post(url, {"amount": "95", "reward": "", "idempotency_key": "k2", **CARD}, follow=True)
    response = client.post(url, {"amount": "30", "reward": "", "idempotency_key": "k3"}, follow=True)
    assert "The difference, $65.00, is on its way back to your card." in response.content.decode()
    assert Pledge.objects.get() == pledge
    assert net_charged(pledge) == 3_000

    page = client.get(reverse("pledges:list")).content.decode()
    assert "Changed 3 times" in page
    client.force_login(live_campaign.initiator)
    dashboard = client.get(reverse("dashboard:campaign_dashboard", kwargs={"slug": live_campaign.slug}))
    assert "Changed 3 times" in dashboard.content.decode()
    csv_url = reverse("dashboard:campaign_backers_csv", kwargs={"slug": live_campaign.slug})
    body = b"".join(client.get(csv_url).streaming_content).decode()
    assert body.count("\n") == 2  # one row for the pledge, with its history
    assert "25.00 -> 90.00 reward - -> Jacket" in body
    assert invariant_problems() == []

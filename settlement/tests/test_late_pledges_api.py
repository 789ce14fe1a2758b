"""The late-pledge API: the initiator's offer and a backer's late pledge; bad input is a 4xx that changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client
from escrow.models import GatewayOperation
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, LatePledgeOffer, LatePledgeReward

from .late_helpers import LATE_PRICE, campaign_settle, campaign_with_late_offer

pytestmark = pytest.mark.django_db


def _url(campaign, tail: str = "") -> str:
    return f"/api/v1/campaigns/{campaign.pk}/late-pledges/{tail}"


def _state(campaign) -> tuple:
    return (
        list(LatePledgeOffer.objects.filter(campaign=campaign).values_list("status", "closed_at")),
        sorted(LatePledgeReward.objects.filter(offer__campaign=campaign).values_list("reward_id", "price")),
        AuditEvent.objects.count(),
    )


def test_the_initiator_sets_edits_and_closes_late_pledges():
    campaign, reward = campaign_with_late_offer()
    client = api_client(campaign.initiator)

    response = client.put(_url(campaign), {"rewards": [{"reward": reward.pk, "price": 4_000}]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["rewards"][0]["price"] == 4_000
    assert response.json()["taking_pledges"] is False  # not before success

    response = client.post(_url(campaign, "close/"))
    assert response.status_code == 200
    assert api_client(None).get(_url(campaign)).json()["status"] == "closed"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("below", "late_price_below_campaign_price"),
        ("string", None),
        ("duplicate", "duplicate_reward"),
        ("empty", "rewards_required"),
    ],
)
def test_a_bad_offer_is_a_400_and_changes_nothing(body, code):
    campaign, reward = campaign_with_late_offer()
    before = _state(campaign)
    rewards = {
        "below": [{"reward": reward.pk, "price": 2_499}],
        "string": [{"reward": reward.pk, "price": "30.00"}],
        "duplicate": [{"reward": reward.pk, "price": 3_000}, {"reward": reward.pk, "price": 4_000}],
        "empty": [],
    }[body]
    response = api_client(campaign.initiator).put(_url(campaign), {"rewards": rewards}, format="json")
    assert response.status_code == 400, response.content
    if code:
        assert response.json()["code"] == code
    assert _state(campaign) == before


def test_opening_after_the_deadline_and_reopening_after_close_are_409s_that_change_nothing():
    campaign, reward = campaign_with_late_offer()
    client = api_client(campaign.initiator)
    client.post(_url(campaign, "close/"))
    before = _state(campaign)
    response = client.put(_url(campaign), {"rewards": [{"reward": reward.pk, "price": 3_000}]}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "late_pledges_closed")
    assert client.post(_url(campaign, "close/")).status_code == 409
    assert _state(campaign) == before

    late, late_reward = campaign_with_late_offer()
    Campaign.objects.filter(pk=late.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    before = _state(late)
    response = api_client(late.initiator).put(
        _url(late), {"rewards": [{"reward": late_reward.pk, "price": 9_000}]}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "campaign_not_live")
    assert _state(late) == before


def test_someone_else_cannot_set_or_close_the_offer():
    campaign, reward = campaign_with_late_offer()
    before = _state(campaign)
    client = api_client(UserFactory())
    response = client.put(_url(campaign), {"rewards": [{"reward": reward.pk, "price": 9_000}]}, format="json")
    assert response.status_code == 403
    assert client.post(_url(campaign, "close/")).status_code == 403
    assert _state(campaign) == before


def _pledge_body(reward, amount=LATE_PRICE) -> dict:
    return {"amount": amount, "currency": "USD", "reward": reward.pk, "payment_token": "tok_visa"}


def test_a_backer_pledges_late_with_an_idempotency_key():
    campaign, reward = campaign_with_late_offer()
    campaign = campaign_settle(campaign)
    backer = UserFactory()
    client = api_client(backer)
    assert client.get(_url(campaign)).json()["taking_pledges"] is True

    response = client.post(_url(campaign, "pledges/"), _pledge_body(reward), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post(_url(campaign, "pledges/"), _pledge_body(reward), format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 201, response.content
    assert response.json()["status"] == PledgeStatus.HELD
    assert again.json()["id"] == response.json()["id"]
    assert GatewayOperation.objects.filter(kind="charge", amount=LATE_PRICE).count() == 1
    no_key = client.post(_url(campaign, "pledges/"), _pledge_body(reward), format="json")
    assert no_key.status_code == 400


@pytest.mark.parametrize(
    ("amount", "status", "code"),
    [
        (LATE_PRICE - 1, 400, "below_reward_minimum"),
        (0, 400, None),
        (10**16, 400, None),
        (2.5, 400, None),
    ],
)
def test_a_late_pledge_out_of_range_is_a_400_and_charges_nothing(amount, status, code):
    campaign, reward = campaign_with_late_offer()
    campaign = campaign_settle(campaign)
    charges = GatewayOperation.objects.count()
    response = api_client(UserFactory()).post(
        _url(campaign, "pledges/"), _pledge_body(reward, amount), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == status, response.content
    if code:
        assert response.json()["code"] == code
    assert GatewayOperation.objects.count() == charges
    assert not Pledge.objects.filter(is_late=True).exists()
    reward.refresh_from_db()
    assert reward.claimed_count == 0


def test_late_pledges_on_a_campaign_not_yet_succeeded_are_a_409():
    campaign, reward = campaign_with_late_offer()
    response = api_client(UserFactory()).post(
        _url(campaign, "pledges/"), _pledge_body(reward), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert (response.status_code, response.json()["code"]) == (409, "late_pledges_not_open")
    assert not Pledge.objects.filter(is_late=True).exists()

"""The pledge endpoints: create with Idempotency-Key, list and read one's own, cancel, staff refund."""

import pytest
from django.core.cache import cache

from accounts.tests.factories import FinanceFactory, UserFactory
from crowdfund_site.api.models import IdempotencyRecord
from crowdfund_site.api.testing import api_client, assert_error
from escrow.gateway import get_gateway
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import charge_key
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_left_pending
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def _pledge_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.pk}/pledges/"


def _post_pledge(client, campaign, *, key="key-1", **body):
    data = {"amount": 2_500, "currency": campaign.currency, "reward": None, "payment_token": "tok_visa", **body}
    return client.post(_pledge_url(campaign), data, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_pledge_is_created_held_and_counted(backer, live_campaign):
    response = _post_pledge(api_client(backer), live_campaign)

    assert response.status_code == 201
    body = response.json()
    assert body["amount"] == 2_500
    assert body["currency"] == "USD"
    assert body["status"] == PledgeStatus.HELD
    assert body["campaign"]["id"] == live_campaign.pk
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 2_500
    assert ledger_verify() == []


def test_same_key_and_body_returns_the_first_response_without_charging_again(backer, live_campaign):
    client = api_client(backer)
    first = _post_pledge(client, live_campaign)
    again = _post_pledge(client, live_campaign)

    assert again.status_code == 201
    assert again.content == first.content
    assert Pledge.objects.count() == 1
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 2_500


def test_a_pledge_a_dead_request_left_charged_but_not_held_is_held_by_the_retry(backer, live_campaign):
    stale = pledge_left_pending(campaign=live_campaign, backer=backer, amount=2_500)
    # The process died after the charge went through, before the hold was written.
    get_gateway().charge(idempotency_key=charge_key(stale.pk), amount=2_500, currency="USD", token="tok_visa")

    retried = _post_pledge(api_client(backer), live_campaign, key=stale.idempotency_key)

    assert retried.status_code == 201
    assert (retried.json()["id"], retried.json()["status"]) == (stale.pk, PledgeStatus.HELD)
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 2_500
    assert ledger_verify() == []


def test_same_key_with_a_different_body_is_refused(backer, live_campaign):
    client = api_client(backer)
    _post_pledge(client, live_campaign)

    response = _post_pledge(client, live_campaign, amount=9_900)

    assert_error(response, 409, "idempotency_key_reused")
    assert Pledge.objects.count() == 1


def test_same_key_on_another_campaign_is_refused(backer, live_campaign):
    client = api_client(backer)
    _post_pledge(client, live_campaign)

    response = _post_pledge(client, LiveCampaignFactory())

    assert_error(response, 409, "idempotency_key_reused")


def test_keys_are_per_user(live_campaign):
    first, second = UserFactory(), UserFactory()
    assert _post_pledge(api_client(first), live_campaign, key="shared").status_code == 201
    assert _post_pledge(api_client(second), live_campaign, key="shared").status_code == 201
    assert Pledge.objects.count() == 2


@pytest.mark.parametrize("key", [None, "", " ", "k" * 256])
def test_idempotency_key_is_required(backer, live_campaign, key):
    client = api_client(backer)
    data = {"amount": 2_500, "currency": "USD", "payment_token": "tok_visa"}
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}

    response = client.post(_pledge_url(live_campaign), data, format="json", **headers)

    assert_error(response, 400, "idempotency_key_required")
    assert Pledge.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "2500"}, "amount"),
        ({"amount": 25.5}, "amount"),
        ({"amount": 25.0}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": -100}, "amount"),
        ({"amount": 10**40}, "amount"),
        ({"amount": None}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": "EUR"}, "currency"),
        ({"payment_token": ""}, "payment_token"),
        ({"reward": "one"}, "reward"),
        ({"reward": 10**30}, "reward"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(backer, live_campaign, body, field):
    response = _post_pledge(api_client(backer), live_campaign, **body)

    error = assert_error(response, 400)
    assert field in error["fields"]
    assert Pledge.objects.count() == 0
    assert not IdempotencyRecord.objects.exists()  # a refused request leaves the key free


def test_a_corrected_request_may_reuse_the_key_of_a_refused_one(backer, live_campaign):
    client = api_client(backer)
    assert _post_pledge(client, live_campaign, amount=0).status_code == 400
    assert _post_pledge(client, live_campaign).status_code == 201


def test_malformed_json_is_a_400(backer, live_campaign):
    response = api_client(backer).post(
        _pledge_url(live_campaign), "{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert_error(response, 400, "parse_error")


def test_reward_of_another_campaign_is_refused(backer, live_campaign):
    other_reward = RewardTierFactory(campaign=LiveCampaignFactory())
    response = _post_pledge(api_client(backer), live_campaign, reward=other_reward.pk)
    assert_error(response, 400, "invalid_reward")
    assert_error(_post_pledge(api_client(backer), live_campaign, reward=999_999), 400, "invalid_reward")
    assert not Pledge.objects.filter(backer=backer).exists()


def test_a_reward_of_a_campaign_the_backer_may_not_see_is_a_404(backer):
    draft = CampaignFactory()
    reward = RewardTierFactory(campaign=draft)
    assert_error(_post_pledge(api_client(backer), draft, reward=reward.pk), 404, "not_found")


def test_below_reward_minimum_is_refused(backer, live_campaign):
    reward = RewardTierFactory(campaign=live_campaign, minimum_amount=5_000)
    response = _post_pledge(api_client(backer), live_campaign, reward=reward.pk, amount=4_999)
    body = assert_error(response, 400, "below_reward_minimum")
    assert "amount" in body["fields"]


def test_sold_out_reward_is_a_409(live_campaign):
    reward = RewardTierFactory(campaign=live_campaign, quantity_limit=1)
    assert _post_pledge(api_client(UserFactory()), live_campaign, reward=reward.pk).status_code == 201

    response = _post_pledge(api_client(UserFactory()), live_campaign, reward=reward.pk)

    assert_error(response, 409, "sold_out")


def test_sold_out_answer_is_replayed_for_the_same_key(live_campaign):
    reward = RewardTierFactory(campaign=live_campaign, quantity_limit=1)
    _post_pledge(api_client(UserFactory()), live_campaign, reward=reward.pk)
    client = api_client(UserFactory())
    first = _post_pledge(client, live_campaign, reward=reward.pk)
    again = _post_pledge(client, live_campaign, reward=reward.pk)
    assert first.status_code == again.status_code == 409
    assert first.content == again.content


def test_declined_card_is_a_402_and_replayed(backer, live_campaign):
    client = api_client(backer)
    first = _post_pledge(client, live_campaign, payment_token="tok_chargeDeclined")
    again = _post_pledge(client, live_campaign, payment_token="tok_chargeDeclined")

    assert_error(first, 402, "card_declined")
    assert again.content == first.content
    assert Pledge.objects.get().status == PledgeStatus.FAILED


def test_campaign_not_live_is_a_409(backer):
    ended = LiveCampaignFactory(status=CampaignStatus.SUCCEEDED)
    assert_error(_post_pledge(api_client(backer), ended), 409, "campaign_not_live")


def test_own_campaign_is_a_403(live_campaign):
    response = _post_pledge(api_client(live_campaign.initiator), live_campaign)
    assert_error(response, 403, "own_campaign")


def test_campaign_the_backer_may_not_see_is_a_404(backer):
    draft = CampaignFactory()
    assert_error(_post_pledge(api_client(backer), draft), 404, "not_found")
    missing = api_client(backer).post("/api/v1/campaigns/999999/pledges/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_error(missing, 404)


def test_anonymous_pledge_is_a_401(live_campaign):
    response = _post_pledge(api_client(), live_campaign)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Token")


def test_bad_token_is_a_401(live_campaign):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert_error(_post_pledge(client, live_campaign), 401, "authentication_failed")


def test_list_shows_only_my_pledges_newest_first_by_cursor(live_campaign, django_assert_max_num_queries):
    me, someone = UserFactory(), UserFactory()
    client = api_client(me)
    for n in range(3):  # one open pledge per campaign: three campaigns
        _post_pledge(client, live_campaign if n == 0 else LiveCampaignFactory(), key=f"mine-{n}", amount=1_000 + n)
    _post_pledge(api_client(someone), live_campaign, key="theirs")

    with django_assert_max_num_queries(4):  # with each pledge's change history
        response = client.get("/api/v1/pledges/", {"page_size": 2})

    assert response.status_code == 200
    body = response.json()
    assert [p["amount"] for p in body["results"]] == [1_002, 1_001]
    following = client.get(body["next"]).json()
    assert [p["amount"] for p in following["results"]] == [1_000]


def test_list_costs_the_same_queries_for_many_pledges(live_campaign, django_assert_max_num_queries):
    me = UserFactory()
    client = api_client(me)
    for n in range(25):
        campaign = live_campaign if n == 0 else LiveCampaignFactory()
        _post_pledge(client, campaign, key=f"k{n}", reward=RewardTierFactory(campaign=campaign).pk)
    with django_assert_max_num_queries(4):  # with the change histories, in one query
        response = client.get("/api/v1/pledges/")
    assert len(response.json()["results"]) == 20


def test_bad_cursor_is_a_404(backer):
    assert_error(api_client(backer).get("/api/v1/pledges/", {"cursor": "garbage"}), 404)


def test_anonymous_list_is_a_401():
    assert_error(api_client().get("/api/v1/pledges/"), 401)


def test_detail_of_my_pledge(backer, live_campaign):
    client = api_client(backer)
    pledge_id = _post_pledge(client, live_campaign).json()["id"]
    response = client.get(f"/api/v1/pledges/{pledge_id}/")
    assert response.status_code == 200
    assert response.json()["id"] == pledge_id


def test_another_backers_pledge_is_a_404_not_a_403(backer, live_campaign):
    pledge_id = _post_pledge(api_client(UserFactory()), live_campaign).json()["id"]
    client = api_client(backer)

    assert_error(client.get(f"/api/v1/pledges/{pledge_id}/"), 404)
    assert_error(client.post(f"/api/v1/pledges/{pledge_id}/cancel/", HTTP_IDEMPOTENCY_KEY="c"), 404)
    assert Pledge.objects.get(pk=pledge_id).status == PledgeStatus.HELD
    # Even the campaign's initiator cannot read a backer's pledge here.
    assert_error(api_client(live_campaign.initiator).get(f"/api/v1/pledges/{pledge_id}/"), 404)


def test_cancel_my_pledge_refunds_it_and_replays(backer, live_campaign):
    client = api_client(backer)
    pledge_id = _post_pledge(client, live_campaign).json()["id"]

    first = client.post(f"/api/v1/pledges/{pledge_id}/cancel/", HTTP_IDEMPOTENCY_KEY="cancel-1")
    again = client.post(f"/api/v1/pledges/{pledge_id}/cancel/", HTTP_IDEMPOTENCY_KEY="cancel-1")

    assert first.status_code == 200
    assert first.json()["status"] == PledgeStatus.CANCELLED
    assert again.content == first.content
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 0
    assert ledger_verify() == []


def test_cancel_twice_with_new_keys_is_a_409(backer, live_campaign):
    client = api_client(backer)
    pledge_id = _post_pledge(client, live_campaign).json()["id"]
    client.post(f"/api/v1/pledges/{pledge_id}/cancel/", HTTP_IDEMPOTENCY_KEY="cancel-1")

    response = client.post(f"/api/v1/pledges/{pledge_id}/cancel/", HTTP_IDEMPOTENCY_KEY="cancel-2")

    assert_error(response, 409, "not_held")


def test_cancel_needs_a_key(backer, live_campaign):
    client = api_client(backer)
    pledge_id = _post_pledge(client, live_campaign).json()["id"]
    assert_error(client.post(f"/api/v1/pledges/{pledge_id}/cancel/"), 400, "idempotency_key_required")


def test_finance_refunds_a_pledge(backer, live_campaign):
    pledge_id = _post_pledge(api_client(backer), live_campaign).json()["id"]
    finance = api_client(FinanceFactory())

    response = finance.post(
        f"/api/v1/pledges/{pledge_id}/refund/", {"reason": "duplicate"}, format="json", HTTP_IDEMPOTENCY_KEY="r1"
    )

    assert response.status_code == 200
    assert response.json()["status"] == PledgeStatus.REFUNDED
    assert ledger_verify() == []


def test_refund_needs_a_reason(backer, live_campaign):
    pledge_id = _post_pledge(api_client(backer), live_campaign).json()["id"]
    response = api_client(FinanceFactory()).post(
        f"/api/v1/pledges/{pledge_id}/refund/", {"reason": ""}, format="json", HTTP_IDEMPOTENCY_KEY="r1"
    )
    assert "reason" in assert_error(response, 400)["fields"]


def test_backers_cannot_refund(backer, live_campaign):
    pledge_id = _post_pledge(api_client(backer), live_campaign).json()["id"]
    response = api_client(backer).post(
        f"/api/v1/pledges/{pledge_id}/refund/", {"reason": "mine"}, format="json", HTTP_IDEMPOTENCY_KEY="r1"
    )
    assert_error(response, 403, "not_staff")
    assert Pledge.objects.get(pk=pledge_id).status == PledgeStatus.HELD


def test_refund_of_a_missing_pledge_is_a_404():
    response = api_client(FinanceFactory()).post(
        "/api/v1/pledges/424242/refund/", {"reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="r1"
    )
    assert_error(response, 404)


def test_gateway_outage_is_a_503_and_the_same_key_may_be_retried(backer, live_campaign, monkeypatch):
    from escrow import gateway
    from escrow.gateway import GatewayResult

    real_charge = gateway.SandboxGateway.charge
    monkeypatch.setattr(gateway.SandboxGateway, "charge", lambda self, **kw: GatewayResult(ok=False, transient=True))
    monkeypatch.setattr("pledges.services.time.sleep", lambda seconds: None)
    client = api_client(backer)

    assert_error(_post_pledge(client, live_campaign), 503, "payment_processing_error")
    assert not IdempotencyRecord.objects.exists()  # not an outcome: the key stays free for the retry

    monkeypatch.setattr(gateway.SandboxGateway, "charge", real_charge)
    retried = _post_pledge(client, live_campaign)

    assert retried.status_code == 201
    assert Pledge.objects.get().status == PledgeStatus.HELD
    assert ledger_verify() == []

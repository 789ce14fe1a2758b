"""POST /api/v1/pledges/{id}/change-amount/: swap a held pledge for one of another amount."""

import pytest
from django.core.cache import cache

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_held
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


VISA = "tok_visa"


def _post_change(client, pledge, *, key="change-1", amount=4_000, token=VISA):
    return client.post(
        f"/api/v1/pledges/{pledge.pk}/change-amount/",
        {"amount": amount, "payment_token": token},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def _totals(campaign) -> tuple[int, int]:
    campaign.refresh_from_db()
    return campaign.pledged_amount, campaign.backer_count


def test_change_holds_a_replacement_and_cancels_the_old_pledge(backer, live_campaign):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)

    response = _post_change(api_client(backer), old, amount=4_500)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] != old.pk
    assert body["amount"] == 4_500
    assert body["status"] == PledgeStatus.HELD
    assert body["campaign"]["id"] == live_campaign.pk
    old.refresh_from_db()
    assert old.status == PledgeStatus.CANCELLED
    assert Pledge.objects.get(pk=body["id"]).status == PledgeStatus.HELD
    assert _totals(live_campaign) == (4_500, 1)
    assert ledger_verify() == []


def test_replay_with_the_same_key_returns_the_same_response_and_changes_nothing(backer, live_campaign):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    client = api_client(backer)
    first = _post_change(client, old)

    again = _post_change(client, old)

    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Pledge.objects.filter(backer=backer).count() == 2
    assert _totals(live_campaign) == (4_000, 1)
    assert ledger_verify() == []


def test_same_key_with_a_different_body_is_refused(backer, live_campaign):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    client = api_client(backer)
    _post_change(client, old)

    response = _post_change(client, old, amount=9_900)

    assert_error(response, 409, "idempotency_key_reused")
    assert Pledge.objects.filter(backer=backer).count() == 2
    assert _totals(live_campaign) == (4_000, 1)


def test_another_backers_pledge_is_not_found(backer, live_campaign):
    theirs = pledge_held(campaign=live_campaign, backer=UserFactory(), amount=3_000)

    response = _post_change(api_client(backer), theirs)

    assert_error(response, 404)
    theirs.refresh_from_db()
    assert theirs.status == PledgeStatus.HELD
    assert _totals(live_campaign) == (3_000, 1)


def test_a_declined_card_is_402_and_the_old_pledge_stays_held(backer, live_campaign):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)

    response = _post_change(api_client(backer), old, amount=6_000, token="tok_chargeDeclined")

    assert_error(response, 402)
    old.refresh_from_db()
    assert old.status == PledgeStatus.HELD
    assert _totals(live_campaign) == (3_000, 1)
    assert ledger_verify() == []


def test_the_same_amount_is_refused(backer, live_campaign):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)

    response = _post_change(api_client(backer), old, amount=3_000)

    assert_error(response, 400, "same_amount")
    assert Pledge.objects.filter(backer=backer).count() == 1


def test_a_replaced_pledge_cannot_change_again(backer, live_campaign):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    client = api_client(backer)
    _post_change(client, old)

    response = _post_change(client, old, key="change-2", amount=5_000)

    assert_error(response, 409, "not_held")
    assert _totals(live_campaign) == (4_000, 1)


def test_anonymous_is_401(live_campaign):
    old = pledge_held(campaign=live_campaign, amount=3_000)

    response = _post_change(api_client(), old)

    assert_error(response, 401)


def test_missing_idempotency_key_is_400(backer, live_campaign):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)

    response = api_client(backer).post(
        f"/api/v1/pledges/{old.pk}/change-amount/", {"amount": 4_000, "payment_token": VISA}, format="json"
    )

    assert_error(response, 400, "idempotency_key_required")
    old.refresh_from_db()
    assert old.status == PledgeStatus.HELD

"""Campaign cancellation and the staff ledger check through the API."""

import pytest
from django.core.cache import cache

from accounts.tests.factories import FinanceFactory, ReviewerFactory, UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from pledges.models import Pledge, PledgeStatus
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def _pledge(campaign, backer=None) -> dict:
    response = api_client(backer or UserFactory()).post(
        f"/api/v1/campaigns/{campaign.pk}/pledges/",
        {"amount": 2_000, "currency": "USD", "payment_token": "tok_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="p1",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_initiator_cancels_and_every_backer_is_refunded(
    live_campaign, celery_eager, django_capture_on_commit_callbacks
):
    pledges = [_pledge(live_campaign) for _ in range(3)]
    owner = api_client(live_campaign.initiator)

    with django_capture_on_commit_callbacks(execute=True):
        first = owner.post(
            f"/api/v1/campaigns/{live_campaign.pk}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="c1"
        )
    again = owner.post(f"/api/v1/campaigns/{live_campaign.pk}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="c1")

    assert first.status_code == 200
    assert first.json()["status"] == CampaignStatus.CANCELLED
    assert again.content == first.content
    live_campaign.refresh_from_db()
    assert live_campaign.status == CampaignStatus.CANCELLED
    assert set(Pledge.objects.filter(pk__in=[p["id"] for p in pledges]).values_list("status", flat=True)) == {
        PledgeStatus.REFUNDED
    }
    assert ledger_verify() == []
    # Cancelling again under a new key is a state conflict.
    assert_error(
        owner.post(f"/api/v1/campaigns/{live_campaign.pk}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="c2"),
        409,
        "invalid_state",
    )


def test_others_cannot_cancel(live_campaign):
    url = f"/api/v1/campaigns/{live_campaign.pk}/cancel/"
    assert_error(api_client(UserFactory()).post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="c"), 403)
    assert_error(api_client().post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="c"), 401)
    draft = CampaignFactory()
    assert_error(
        api_client(UserFactory()).post(
            f"/api/v1/campaigns/{draft.pk}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="c"
        ),
        404,
    )
    live_campaign.refresh_from_db()
    assert live_campaign.status == CampaignStatus.LIVE


def test_staff_cancel_needs_a_reason(live_campaign):
    finance = api_client(FinanceFactory())
    url = f"/api/v1/campaigns/{live_campaign.pk}/cancel/"
    assert_error(finance.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="c"), 400, "reason_required")
    response = finance.post(url, {"reason": "fraud"}, format="json", HTTP_IDEMPOTENCY_KEY="c")
    assert response.status_code == 200


def test_ledger_verification_for_finance_only(live_campaign):
    _pledge(live_campaign)
    response = api_client(FinanceFactory()).get("/api/v1/ledger/verification/")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert response.json()["problems"] == []

    assert_error(api_client(UserFactory()).get("/api/v1/ledger/verification/"), 403, "not_staff")
    assert_error(api_client(ReviewerFactory()).get("/api/v1/ledger/verification/"), 403)
    assert_error(api_client().get("/api/v1/ledger/verification/"), 401)

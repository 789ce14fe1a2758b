"""The risk API: forecast, recommendations and the staff allocation preview, with their refusals."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, CategoryFactory, LiveCampaignFactory

from .factories import pledge_history

pytestmark = pytest.mark.django_db

PREVIEW = "/api/v1/allocations/preview/"
RECOMMENDATIONS = "/api/v1/recommendations/"


def forecast_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.pk}/forecast/"


# --- Forecast ------------------------------------------------------------------------------------


def test_anyone_gets_the_forecast_of_a_live_campaign():
    now = timezone.now()
    campaign = LiveCampaignFactory(
        goal=100_000, launched_at=now - timedelta(days=10), deadline=now + timedelta(days=20)
    )
    times = [now - timedelta(days=10) + timedelta(hours=6 * i) for i in range(40)]
    pledge_history(campaign, times=times, amounts=[2_000] * 40)

    response = api_client().get(forecast_url(campaign))

    assert response.status_code == 200
    body = response.json()
    assert body["campaign"] == campaign.pk
    assert body["currency"] == "USD"
    assert body["pledged"] == 80_000
    assert body["low"] <= body["predicted_total"] <= body["high"]
    assert body["predicted_total"] >= body["pledged"]
    assert 0 <= body["probability_of_goal"] <= 1
    assert body["cone"]
    assert set(body["cone"][0]) == {"at", "low", "median", "high"}
    assert body["explanation"]


def test_the_forecast_of_a_draft_is_a_404_except_for_its_initiator():
    draft = CampaignFactory()

    assert_error(api_client().get(forecast_url(draft)), 404)
    assert_error(api_client(UserFactory()).get(forecast_url(draft)), 404)
    assert api_client(draft.initiator).get(forecast_url(draft)).status_code == 200


def test_the_forecast_of_a_missing_campaign_is_a_404():
    assert_error(api_client().get("/api/v1/campaigns/999999/forecast/"), 404)


# --- Recommendations -----------------------------------------------------------------------------


def test_recommendations_need_a_signed_in_caller():
    assert_error(api_client().get(RECOMMENDATIONS), 401)


def test_recommendations_put_the_backed_category_first_with_the_reason():
    games, art = CategoryFactory(name="Games"), CategoryFactory(name="Art")
    backer = UserFactory()
    for campaign in [LiveCampaignFactory(category=games) for _ in range(3)]:
        pledge_history(campaign, times=[timezone.now()], amounts=[2_500], backers=[backer])
    wanted = LiveCampaignFactory(category=games, title="Dice tower")
    LiveCampaignFactory(category=art, title="Popular art", backer_count=500, pledged_amount=90_000)

    response = api_client(backer).get(RECOMMENDATIONS, {"limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert len(body) == 2
    assert body[0]["campaign"]["id"] == wanted.pk
    assert body[0]["campaign"]["title"] == "Dice tower"
    assert body[0]["reason"] == "because you backed 3 Games campaigns"
    assert body[0]["score"] >= body[1]["score"]


def test_recommendations_have_a_cold_start_for_a_new_backer():
    LiveCampaignFactory(title="Popular", backer_count=500, pledged_amount=90_000)
    LiveCampaignFactory(title="Quiet")

    body = api_client(UserFactory()).get(RECOMMENDATIONS).json()

    assert [item["campaign"]["title"] for item in body] == ["Popular", "Quiet"]
    assert all(item["reason"] for item in body)


def test_recommendations_refuse_a_bad_limit():
    client = api_client(UserFactory())
    assert_error(client.get(RECOMMENDATIONS, {"limit": 0}), 400)
    assert_error(client.get(RECOMMENDATIONS, {"limit": "many"}), 400)
    assert_error(client.get(f"{RECOMMENDATIONS}?limit=1&limit=2"), 400)


# --- Allocation preview --------------------------------------------------------------------------


def test_staff_preview_an_exact_split():
    a, b, c = LiveCampaignFactory(), LiveCampaignFactory(), LiveCampaignFactory()
    body = {
        "total": 1_000,
        "currency": "USD",
        "parts": [{"campaign": a.pk, "weight": 1}, {"campaign": b.pk, "weight": 1}, {"campaign": c.pk, "weight": 1}],
    }

    response = api_client(StaffFactory()).post(PREVIEW, body, format="json")

    assert response.status_code == 200
    parts = response.json()["parts"]
    assert [p["campaign"] for p in parts] == [a.pk, b.pk, c.pk]
    assert sorted(p["amount"] for p in parts) == [333, 333, 334]
    assert sum(p["amount"] for p in parts) == 1_000
    assert response.json()["total"] == 1_000


def test_the_allocation_preview_is_for_staff_only():
    campaign = LiveCampaignFactory()
    body = {"total": 1_000, "currency": "USD", "parts": [{"campaign": campaign.pk, "weight": 1}]}

    assert_error(api_client().post(PREVIEW, body, format="json"), 401)
    assert_error(api_client(UserFactory()).post(PREVIEW, body, format="json"), 403, "not_staff")


def test_the_allocation_preview_refuses_bad_input():
    campaign = LiveCampaignFactory()
    other = LiveCampaignFactory(status=CampaignStatus.LIVE)
    client = api_client(StaffFactory())

    def preview(**changes):
        body = {"total": 1_000, "currency": "USD", "parts": [{"campaign": campaign.pk, "weight": 1}], **changes}
        return client.post(PREVIEW, body, format="json")

    assert_error(preview(parts=[{"campaign": campaign.pk, "weight": 0}]), 400, "invalid_weights")
    assert_error(preview(parts=[{"campaign": campaign.pk, "weight": -1}]), 400)
    assert_error(preview(parts=[]), 400)
    assert_error(preview(total=0), 400)
    assert_error(preview(total="10.00"), 400)
    assert_error(preview(currency="XXX"), 400)
    assert_error(
        preview(parts=[{"campaign": campaign.pk, "weight": 1}, {"campaign": campaign.pk, "weight": 2}]),
        400,
        "invalid_campaign",
    )
    assert_error(preview(parts=[{"campaign": other.pk + 1000, "weight": 1}]), 400, "invalid_campaign")
    assert_error(preview(parts=[{"campaign": campaign.pk, "weight": 1, "extra": 1}]), 400)

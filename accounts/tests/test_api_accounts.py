"""API tokens, the caller's profile and the caller's campaigns."""

import pytest
from django.core.cache import cache

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from projects.tests.factories import CampaignFactory, LiveCampaignFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def test_token_for_username_and_password_authenticates_requests():
    user = UserFactory(username="ada")
    response = api_client().post(
        "/api/v1/auth/token/", {"username": "ada", "password": "correct-horse-battery"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]

    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").json()["id"] == user.pk
    # Asking again returns the same token.
    again = api_client().post(
        "/api/v1/auth/token/", {"username": "ada", "password": "correct-horse-battery"}, format="json"
    )
    assert again.json()["token"] == token


@pytest.mark.parametrize(
    "body",
    [{"username": "ada", "password": "wrong"}, {"username": "nobody", "password": "x"}],
)
def test_wrong_credentials_are_a_401(body):
    UserFactory(username="ada")
    response = api_client().post("/api/v1/auth/token/", body, format="json")
    assert_error(response, 401, "invalid_credentials")
    assert response["WWW-Authenticate"].startswith("Token")


def test_missing_fields_are_a_400():
    body = assert_error(api_client().post("/api/v1/auth/token/", {}, format="json"), 400)
    assert set(body["fields"]) == {"username", "password"}


def test_token_requests_are_throttled_per_address(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "3/min"},
    }
    client = api_client()
    for _ in range(3):
        client.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, format="json")
    response = client.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, format="json")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_me_and_profile_update():
    user = UserFactory(display_name="Ada")
    client = api_client(user)
    assert client.get("/api/v1/me/").json()["display_name"] == "Ada"

    response = client.patch("/api/v1/me/", {"bio": "Builds engines.", "preferred_language": "zh-hans"}, format="json")

    assert response.status_code == 200
    assert response.json()["bio"] == "Builds engines."
    assert response.json()["display_name"] == "Ada"
    user.refresh_from_db()
    assert user.preferred_language == "zh-hans"


def test_profile_refuses_invalid_input():
    body = assert_error(api_client(UserFactory()).patch("/api/v1/me/", {"display_name": "x" * 81}, format="json"), 400)
    assert "display_name" in body["fields"]


def test_me_needs_sign_in():
    assert_error(api_client().get("/api/v1/me/"), 401, "not_authenticated")
    assert_error(api_client().get("/api/v1/me/campaigns/"), 401)


def test_my_campaigns_at_every_stage_with_totals(django_assert_max_num_queries):
    me = UserFactory()
    draft = CampaignFactory(initiator=me)
    live = LiveCampaignFactory(initiator=me, pledged_amount=12_345, backer_count=3)
    LiveCampaignFactory()  # someone else's

    client = api_client(me)
    with django_assert_max_num_queries(3):
        response = client.get("/api/v1/me/campaigns/")

    results = {c["id"]: c for c in response.json()["results"]}
    assert set(results) == {draft.pk, live.pk}
    assert results[live.pk]["pledged_amount"] == 12_345
    assert results[live.pk]["backer_count"] == 3
    assert results[live.pk]["percent_funded"] == 12

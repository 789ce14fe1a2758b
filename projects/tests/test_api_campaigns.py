"""The campaign endpoints: visibility, filters, create/update/submit/launch, review, reward tiers."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.tests.factories import FinanceFactory, ReviewerFactory, UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from projects.models import Campaign, CampaignStatus, FundingModel, RewardTier
from projects.tests.factories import CampaignFactory, CategoryFactory, LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {c["id"] for c in response.json()["results"]}


def test_anonymous_list_shows_only_public_campaigns():
    # Upcoming (approved) and ended campaigns are public, as on their pages; a campaign cancelled
    # after launch too. Drafts, reviews, refusals, withdrawals before launch and suspensions are not
    # (projects/tests/test_visibility.py has the whole rule).
    public = [LiveCampaignFactory(status=s) for s in ("live", "closing", "succeeded", "failed", "cancelled")]
    public.append(CampaignFactory(status="approved"))
    hidden = [CampaignFactory(status=s) for s in ("draft", "in_review", "rejected", "cancelled")]
    hidden.append(LiveCampaignFactory(status="suspended"))

    ids = _ids(api_client().get("/api/v1/campaigns/"))

    assert ids == {c.pk for c in public}
    assert not ids & {c.pk for c in hidden}


def test_initiators_also_see_their_own_drafts():
    me = UserFactory()
    mine = CampaignFactory(initiator=me)
    others_draft = CampaignFactory()
    live = LiveCampaignFactory()

    assert _ids(api_client(me).get("/api/v1/campaigns/")) == {mine.pk, live.pk}
    assert others_draft.pk not in _ids(api_client(me).get("/api/v1/campaigns/"))


def test_reviewers_see_campaigns_in_review():
    in_review = CampaignFactory(status=CampaignStatus.IN_REVIEW)
    assert in_review.pk in _ids(api_client(ReviewerFactory()).get("/api/v1/campaigns/"))


def test_filters_search_and_ordering():
    games = CategoryFactory(name="Games")
    a = LiveCampaignFactory(title="Dragon board game", category=games, pledged_amount=500)
    b = LiveCampaignFactory(title="Solar lamp", funding_model=FundingModel.FLEXIBLE, pledged_amount=900)
    c = LiveCampaignFactory(title="Dragon kite", status=CampaignStatus.SUCCEEDED, pledged_amount=100)
    client = api_client()

    assert _ids(client.get("/api/v1/campaigns/", {"category": games.pk})) == {a.pk}
    assert _ids(client.get("/api/v1/campaigns/", {"funding_model": "flexible"})) == {b.pk}
    assert _ids(client.get("/api/v1/campaigns/", {"status": "succeeded"})) == {c.pk}
    assert _ids(client.get("/api/v1/campaigns/", {"search": "dragon"})) == {a.pk, c.pk}
    ordered = client.get("/api/v1/campaigns/", {"ordering": "-pledged_amount"}).json()["results"]
    assert [x["id"] for x in ordered] == [b.pk, a.pk, c.pk]
    ordered = client.get("/api/v1/campaigns/", {"ordering": "pledged_amount"}).json()["results"]
    assert [x["id"] for x in ordered] == [c.pk, a.pk, b.pk]


@pytest.mark.parametrize(
    "params",
    [{"status": "nope"}, {"ordering": "password"}, {"category": "x"}, {"category": "9" * 30}, {"search": "a\x00b"}],
)
def test_bad_filters_are_a_400(params):
    assert_error(api_client().get("/api/v1/campaigns/", params), 400)


def test_pages_and_constant_queries(django_assert_max_num_queries):
    for _ in range(25):
        RewardTierFactory(campaign=LiveCampaignFactory())
    client = api_client(UserFactory())
    with django_assert_max_num_queries(4):
        first = client.get("/api/v1/campaigns/")
    body = first.json()
    assert body["count"] == 25
    assert len(body["results"]) == 20
    following = client.get(body["next"])
    assert following.status_code == 200, (body["next"], following.content)
    assert len(following.json()["results"]) == 5
    assert_error(client.get("/api/v1/campaigns/", {"page": 99}), 404)


def test_retrieve_includes_rewards_and_totals(live_campaign):
    RewardTierFactory(campaign=live_campaign, quantity_limit=3)
    response = api_client().get(f"/api/v1/campaigns/{live_campaign.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["goal"] == 100_000
    assert body["pledged_amount"] == 0
    assert body["rewards"][0]["remaining"] == 3


def test_draft_of_someone_else_is_a_404():
    draft = CampaignFactory()
    assert_error(api_client().get(f"/api/v1/campaigns/{draft.pk}/"), 404)
    assert_error(api_client(UserFactory()).get(f"/api/v1/campaigns/{draft.pk}/"), 404)
    assert api_client(draft.initiator).get(f"/api/v1/campaigns/{draft.pk}/").status_code == 200


def test_unknown_and_malformed_ids_are_json_404s():
    client = api_client()
    assert_error(client.get("/api/v1/campaigns/424242/"), 404)
    assert_error(client.get("/api/v1/campaigns/abc/"), 404)
    assert_error(client.get("/api/v1/campaigns/-1/"), 404)
    assert_error(client.get("/api/v1/campaigns/99999999999999999999999/"), 404)
    assert_error(client.get("/api/v1/no-such-thing/"), 404)


def _create_body(**fields) -> dict:
    return {
        "title": "A new board game",
        "summary": "Dragons, dice and friendship.",
        "description": "The whole story.",
        "category": CategoryFactory().pk,
        "currency": "USD",
        "goal": 500_000,
        **fields,
    }


def test_create_draft():
    me = UserFactory()
    response = api_client(me).post("/api/v1/campaigns/", _create_body(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == CampaignStatus.DRAFT
    assert body["goal"] == 500_000
    assert Campaign.objects.get(pk=body["id"]).initiator == me


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"goal": "5000.00"}, "goal"),
        ({"goal": 0}, "goal"),
        ({"category": 424242}, "category"),
        ({"currency": "BTC"}, "currency"),
        ({"duration_days": 61}, "duration_days"),
        ({"title": ""}, "title"),
        ({"funding_model": "equity"}, "funding_model"),
    ],
)
def test_create_refuses_invalid_input(fields, field):
    response = api_client(UserFactory()).post("/api/v1/campaigns/", _create_body(**fields), format="json")
    assert field in assert_error(response, 400)["fields"]
    assert not Campaign.objects.exists()


def test_create_needs_sign_in():
    assert_error(api_client().post("/api/v1/campaigns/", _create_body(), format="json"), 401)


def test_update_while_editable_and_refusals():
    draft = CampaignFactory()
    owner = api_client(draft.initiator)

    response = owner.patch(f"/api/v1/campaigns/{draft.pk}/", {"title": "Better title", "goal": 7_000}, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "Better title"
    assert response.json()["goal"] == 7_000

    assert_error(api_client(UserFactory()).patch(f"/api/v1/campaigns/{draft.pk}/", {"title": "x"}, format="json"), 404)

    live = LiveCampaignFactory()
    assert_error(
        api_client(UserFactory()).patch(f"/api/v1/campaigns/{live.pk}/", {"title": "x"}, format="json"),
        403,
        "not_initiator",
    )
    assert_error(
        api_client(live.initiator).patch(f"/api/v1/campaigns/{live.pk}/", {"title": "x"}, format="json"),
        409,
        "not_editable",
    )


def test_submit_then_review_then_launch():
    draft = CampaignFactory()
    owner = api_client(draft.initiator)
    reviewer = api_client(ReviewerFactory())

    submitted = owner.post(f"/api/v1/campaigns/{draft.pk}/submit/")
    assert submitted.status_code == 200
    assert submitted.json()["status"] == CampaignStatus.IN_REVIEW
    assert_error(owner.post(f"/api/v1/campaigns/{draft.pk}/submit/"), 409, "invalid_state")

    approved = reviewer.post(f"/api/v1/campaigns/{draft.pk}/approve/", {}, format="json")
    assert approved.status_code == 200
    assert approved.json()["status"] == CampaignStatus.APPROVED

    launched = owner.post(f"/api/v1/campaigns/{draft.pk}/launch/")
    assert launched.status_code == 200
    assert launched.json()["status"] == CampaignStatus.LIVE
    assert_error(owner.post(f"/api/v1/campaigns/{draft.pk}/launch/"), 409)


def test_incomplete_campaign_cannot_be_submitted():
    draft = CampaignFactory(description="")
    assert_error(api_client(draft.initiator).post(f"/api/v1/campaigns/{draft.pk}/submit/"), 409, "incomplete_campaign")


def test_only_the_initiator_submits():
    live = LiveCampaignFactory()
    assert_error(api_client(UserFactory()).post(f"/api/v1/campaigns/{live.pk}/submit/"), 403, "not_initiator")


@pytest.mark.parametrize(
    ("decision", "status"),
    [("request-changes", CampaignStatus.CHANGES_REQUESTED), ("reject", CampaignStatus.REJECTED)],
)
def test_review_decisions_need_a_reason(decision, status):
    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW)
    reviewer = api_client(ReviewerFactory())
    url = f"/api/v1/campaigns/{campaign.pk}/{decision}/"

    assert "reason" in assert_error(reviewer.post(url, {}, format="json"), 400)["fields"]
    assert "reason" in assert_error(reviewer.post(url, {"reason": "   "}, format="json"), 400)["fields"]
    response = reviewer.post(url, {"reason": "Needs photos."}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == status


@pytest.mark.parametrize(
    ("decision", "body"), [("approve", {}), ("request-changes", {"reason": "x"}), ("reject", {"reason": "x"})]
)
def test_review_is_for_reviewers_only(decision, body):
    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW)
    url = f"/api/v1/campaigns/{campaign.pk}/{decision}/"
    # A backer cannot even see a campaign in review; its initiator sees it but may not review it.
    assert_error(api_client(UserFactory()).post(url, body, format="json"), 404)
    assert_error(api_client(campaign.initiator).post(url, body, format="json"), 403)
    # Finance staff see every campaign but are not reviewers.
    assert_error(api_client(FinanceFactory()).post(url, body, format="json"), 403, "not_reviewer")
    assert_error(api_client().post(url, body, format="json"), 401)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.IN_REVIEW


def test_reward_tiers_crud_while_editable():
    draft = CampaignFactory()
    owner = api_client(draft.initiator)
    url = f"/api/v1/campaigns/{draft.pk}/rewards/"
    delivery = (timezone.now() + timedelta(days=90)).date().isoformat()

    created = owner.post(
        url,
        {"title": "Poster", "minimum_amount": 1_500, "quantity_limit": 10, "estimated_delivery": delivery},
        format="json",
    )
    assert created.status_code == 201
    reward_id = created.json()["id"]
    assert owner.get(url).json()[0]["remaining"] == 10

    changed = owner.patch(f"{url}{reward_id}/", {"minimum_amount": 2_000}, format="json")
    assert changed.status_code == 200
    assert changed.json()["minimum_amount"] == 2_000
    assert owner.get(f"{url}{reward_id}/").json()["minimum_amount"] == 2_000

    assert owner.delete(f"{url}{reward_id}/").status_code == 204
    assert not RewardTier.objects.exists()


def test_reward_tier_refusals():
    live = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=live)
    url = f"/api/v1/campaigns/{live.pk}/rewards/"
    body = {"title": "Poster", "minimum_amount": 1_500}

    assert_error(api_client(live.initiator).post(url, body, format="json"), 409, "not_editable")
    assert_error(api_client(UserFactory()).post(url, body, format="json"), 403, "not_initiator")
    assert_error(api_client(UserFactory()).delete(f"{url}{reward.pk}/"), 403)
    assert_error(api_client().get(f"{url}424242/"), 404)
    other = RewardTierFactory(campaign=LiveCampaignFactory())
    assert_error(api_client().get(f"{url}{other.pk}/"), 404)
    draft = CampaignFactory()
    assert_error(api_client(UserFactory()).get(f"/api/v1/campaigns/{draft.pk}/rewards/"), 404)


def test_categories_are_public():
    CategoryFactory(name="Art")
    response = api_client().get("/api/v1/categories/")
    assert response.status_code == 200
    assert "Art" in [c["name"] for c in response.json()]


@pytest.mark.parametrize(
    "body",
    [
        {"title": 12},
        {"title": "   "},
        {"title": "a\x00b"},
        {"launch_on_approval": "yes"},
        {"launch_on_approval": 1},
        {"goal": 1_000, "unexpected": True},
    ],
)
def test_create_is_strict_about_types_and_unknown_fields(body):
    response = api_client(UserFactory()).post("/api/v1/campaigns/", _create_body(**body), format="json")
    assert_error(response, 400)
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=abc", "page_size=0", "page_size=101", "page_size=x", "page=1&page=2", "status=live&status=draft"],
)
def test_malformed_paging_and_repeated_parameters_are_a_400(query):
    assert_error(api_client().get(f"/api/v1/campaigns/?{query}"), 400)

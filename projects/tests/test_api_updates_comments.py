"""The campaign updates and comments endpoints: who reads what, who may post, refusals, query counts."""

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from pledges.models import Pledge
from pledges.services import pledge_cancel
from pledges.testing import held_pledges_create_bulk
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus, CampaignUpdate, Comment
from projects.services import campaign_update_create, comment_create
from projects.tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def _updates_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.pk}/updates/"


def _comments_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.pk}/comments/"


def _post_update(campaign, *, title: str = "Prototype done", body: str = "It works.", backers_only: bool = False):
    return campaign_update_create(
        campaign=campaign, actor=campaign.initiator, title=title, body=body, backers_only=backers_only
    )


def _bodies(client, campaign) -> dict[str, str | None]:
    response = client.get(_updates_url(campaign))
    assert response.status_code == 200, response.content
    return {u["title"]: u["body"] for u in response.json()["results"]}


# --- Updates --------------------------------------------------------------------------------------


def test_updates_are_listed_newest_first_with_backers_only_bodies_for_backers_and_initiator(live_campaign, backer):
    _post_update(live_campaign, title="For everyone", body="Public news.")
    _post_update(live_campaign, title="For backers", body="Secret news.", backers_only=True)
    pledge_held(campaign=live_campaign, backer=backer)

    response = api_client().get(_updates_url(live_campaign))

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [u["title"] for u in body["results"]] == ["For backers", "For everyone"]
    assert body["results"][0]["backers_only"] is True
    # Everyone sees that a backers-only update exists; only backers and the initiator read it.
    hidden = {"For everyone": "Public news.", "For backers": None}
    shown = {"For everyone": "Public news.", "For backers": "Secret news."}
    assert _bodies(api_client(), live_campaign) == hidden
    assert _bodies(api_client(UserFactory()), live_campaign) == hidden
    assert _bodies(api_client(backer), live_campaign) == shown
    assert _bodies(api_client(live_campaign.initiator), live_campaign) == shown


def test_a_backer_whose_pledge_was_cancelled_no_longer_reads_backers_only_bodies(live_campaign, backer):
    _post_update(live_campaign, title="For backers", body="Secret news.", backers_only=True)
    pledge = pledge_held(campaign=live_campaign, backer=backer)
    pledge_cancel(pledge=pledge, actor=backer)

    assert _bodies(api_client(backer), live_campaign) == {"For backers": None}


def test_initiator_posts_an_update(live_campaign):
    response = api_client(live_campaign.initiator).post(
        _updates_url(live_campaign),
        {"title": " Shipping ", "body": "Boxes are on their way.", "backers_only": True},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["title"], body["body"], body["backers_only"]) == ("Shipping", "Boxes are on their way.", True)
    update = CampaignUpdate.objects.get(pk=body["id"])
    assert (update.campaign_id, update.author_id) == (live_campaign.pk, live_campaign.initiator_id)


def test_an_update_is_for_everyone_unless_marked(live_campaign):
    response = api_client(live_campaign.initiator).post(
        _updates_url(live_campaign), {"title": "News", "body": "Text."}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["backers_only"] is False


def test_only_the_initiator_posts_updates(live_campaign, backer):
    pledge_held(campaign=live_campaign, backer=backer)
    body = {"title": "News", "body": "Text."}

    assert_error(api_client(backer).post(_updates_url(live_campaign), body, format="json"), 403, "not_initiator")
    assert_error(api_client(UserFactory()).post(_updates_url(live_campaign), body, format="json"), 403, "not_initiator")
    response = api_client().post(_updates_url(live_campaign), body, format="json")
    assert_error(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"] == "Token"
    assert not CampaignUpdate.objects.exists()


@pytest.mark.parametrize("status", [CampaignStatus.DRAFT, CampaignStatus.IN_REVIEW, CampaignStatus.APPROVED])
def test_no_updates_before_launch(status):
    campaign = CampaignFactory(status=status)
    response = api_client(campaign.initiator).post(
        _updates_url(campaign), {"title": "News", "body": "Text."}, format="json"
    )
    assert_error(response, 409, "not_launched")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "", "body": "Text."}, "title"),
        ({"title": "  \n ", "body": "Text."}, "title"),
        ({"title": "x" * 141, "body": "Text."}, "title"),
        ({"title": "News", "body": ""}, "body"),
        ({"title": "News", "body": "x" * 10_001}, "body"),
        ({"title": "News"}, "body"),
        ({"title": "News", "body": "Text.", "backers_only": "yes"}, "backers_only"),
        ({"title": "News", "body": "Text.", "pinned": True}, "pinned"),
    ],
)
def test_update_input_is_checked(live_campaign, fields, field):
    response = api_client(live_campaign.initiator).post(_updates_url(live_campaign), fields, format="json")
    assert field in assert_error(response, 400)["fields"]
    assert not CampaignUpdate.objects.exists()


# --- Comments -------------------------------------------------------------------------------------


def test_comments_are_listed_oldest_first_with_author_names(live_campaign):
    first, second = UserFactory(display_name="Ada Backer"), UserFactory(display_name="")
    for person in (first, second):
        pledge_held(campaign=live_campaign, backer=person)
    comment_create(campaign=live_campaign, actor=first, body="When does it ship?")
    comment_create(campaign=live_campaign, actor=live_campaign.initiator, body="In May.")
    comment_create(campaign=live_campaign, actor=second, body="Great!")

    response = api_client().get(_comments_url(live_campaign))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(c["author"], c["author_is_initiator"], c["body"]) for c in results] == [
        ("Ada Backer", False, "When does it ship?"),
        (live_campaign.initiator.public_name, True, "In May."),
        (second.username, False, "Great!"),  # no display name: the username stands in
    ]


def test_backers_and_the_initiator_comment(live_campaign, backer):
    pledge_held(campaign=live_campaign, backer=backer)

    response = api_client(backer).post(_comments_url(live_campaign), {"body": " Love it "}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["body"] == "Love it"
    assert response.json()["author"] == backer.public_name
    assert response.json()["author_is_initiator"] is False

    response = api_client(live_campaign.initiator).post(
        _comments_url(live_campaign), {"body": "Thanks!"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["author_is_initiator"] is True
    assert list(Comment.objects.filter(campaign=live_campaign).values_list("author_id", flat=True)) == [
        backer.pk,
        live_campaign.initiator_id,
    ]


def test_only_backers_and_the_initiator_comment(live_campaign):
    assert_error(
        api_client(UserFactory()).post(_comments_url(live_campaign), {"body": "Hi"}, format="json"), 403, "not_backer"
    )
    assert_error(api_client().post(_comments_url(live_campaign), {"body": "Hi"}, format="json"), 401)
    assert not Comment.objects.exists()


def test_no_comments_before_launch():
    campaign = CampaignFactory(status=CampaignStatus.APPROVED)
    response = api_client(campaign.initiator).post(_comments_url(campaign), {"body": "Hi"}, format="json")
    assert_error(response, 409, "not_launched")


@pytest.mark.parametrize("fields", [{"body": ""}, {"body": " \t "}, {"body": "x" * 2_001}, {"body": 12}, {}])
def test_comment_input_is_checked(live_campaign, backer, fields):
    pledge_held(campaign=live_campaign, backer=backer)
    response = api_client(backer).post(_comments_url(live_campaign), fields, format="json")
    assert "body" in assert_error(response, 400)["fields"]
    assert not Comment.objects.exists()


# --- Visibility and cost --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body"), [("updates", {"title": "News", "body": "Text."}), ("comments", {"body": "Text."})]
)
def test_someone_elses_draft_is_a_404(kind, body):
    draft = CampaignFactory()
    url = f"/api/v1/campaigns/{draft.pk}/{kind}/"
    stranger = api_client(UserFactory())

    assert_error(api_client().get(url), 404)
    assert_error(stranger.get(url), 404)
    assert_error(stranger.post(url, body, format="json"), 404)
    assert_error(stranger.get(f"/api/v1/campaigns/{draft.pk + 1000}/{kind}/"), 404)
    # Signing in comes first: an anonymous write is a 401 whether or not the campaign exists.
    assert_error(api_client().post(url, body, format="json"), 401)
    # The initiator sees their own draft, which has nothing yet.
    response = api_client(draft.initiator).get(url)
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_updates_are_paged(live_campaign):
    for n in range(21):
        _post_update(live_campaign, title=f"Update {n}")
    client = api_client()

    first = client.get(_updates_url(live_campaign)).json()
    assert (first["count"], len(first["results"])) == (21, 20)
    following = client.get(first["next"])
    assert following.status_code == 200
    assert [u["title"] for u in following.json()["results"]] == ["Update 0"]
    assert_error(client.get(_updates_url(live_campaign), {"page": 3}), 404)
    assert_error(client.get(_updates_url(live_campaign), {"page_size": 0}), 400)


@pytest.mark.parametrize("count", [2, 20])
def test_updates_page_costs_the_same_queries_whatever_its_length(live_campaign, django_assert_max_num_queries, count):
    for n in range(count):
        _post_update(live_campaign, title=f"Update {n}", backers_only=n % 2 == 0)
    reader = pledge_held(campaign=live_campaign).backer
    client = api_client(reader)

    # Token, campaign, is-a-backer, count, page.
    with django_assert_max_num_queries(5):
        response = client.get(_updates_url(live_campaign))

    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("count", [2, 20])
def test_comments_page_costs_the_same_queries_whatever_its_length(live_campaign, django_assert_max_num_queries, count):
    held_pledges_create_bulk(campaign=live_campaign, count=count)
    for pledge in Pledge.objects.filter(campaign=live_campaign).select_related("backer"):
        comment_create(campaign=live_campaign, actor=pledge.backer, body=f"Comment by {pledge.backer.username}")
    client = api_client(UserFactory())

    # Token, campaign, count, page with authors.
    with django_assert_max_num_queries(4):
        response = client.get(_comments_url(live_campaign))

    assert len({c["author"] for c in response.json()["results"]}) == count

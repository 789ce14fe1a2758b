"""Replies, reports and hiding of comments through the API, as the discussion page offers them."""

import pytest

from accounts.models import AuditEvent
from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.api.testing import api_client
from pledges.tests.factories import pledge_held
from projects.models import Comment, CommentReport
from projects.services import comment_create
from projects.tests.factories import LiveCampaignFactory

pytestmark = pytest.mark.django_db


def _url(campaign, comment=None, action: str = "") -> str:
    base = f"/api/v1/campaigns/{campaign.pk}/comments/"
    return f"{base}{comment.pk}/{action}/" if comment else base


@pytest.fixture
def thread():
    campaign = LiveCampaignFactory()
    backer = pledge_held(campaign=campaign).backer
    comment = comment_create(campaign=campaign, actor=backer, body="When does it ship?")
    return campaign, backer, comment


def test_the_initiator_replies_and_the_list_says_whose_reply_to_what(thread):
    campaign, _backer, comment = thread

    response = api_client(campaign.initiator).post(
        _url(campaign), {"body": "In May.", "parent": comment.pk}, format="json"
    )

    assert response.status_code == 201, response.content
    reply = response.json()
    assert (reply["parent"], reply["author_is_initiator"], reply["body"]) == (comment.pk, True, "In May.")
    listed = api_client(UserFactory()).get(_url(campaign)).json()["results"]
    assert [(c["parent"], c["body"]) for c in listed] == [(None, "When does it ship?"), (comment.pk, "In May.")]


def test_a_reply_to_a_reply_or_to_another_campaigns_comment_is_refused(thread):
    campaign, backer, comment = thread
    reply = comment_create(campaign=campaign, actor=campaign.initiator, body="In May.", parent=comment)
    elsewhere = LiveCampaignFactory()
    other = comment_create(campaign=elsewhere, actor=elsewhere.initiator, body="Hi")
    client = api_client(backer)

    for parent in (reply.pk, other.pk, 10**9):
        response = client.post(_url(campaign), {"body": "Thanks", "parent": parent}, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_parent")
    assert Comment.objects.filter(campaign=campaign).count() == 2


def test_anyone_logged_in_reports_a_comment_once(thread):
    campaign, _backer, comment = thread
    client = api_client(UserFactory())

    first = client.post(_url(campaign, comment, "report"), {"reason": "Spam"}, format="json")
    again = client.post(_url(campaign, comment, "report"), {"reason": "Still spam"}, format="json")

    assert first.status_code == again.status_code == 201
    assert again.json()["reason"] == "Spam"
    assert CommentReport.objects.filter(comment=comment).count() == 1
    too_long = client.post(_url(campaign, comment, "report"), {"reason": "x" * 10_000}, format="json")
    assert too_long.status_code == 400
    assert api_client(None).post(_url(campaign, comment, "report"), {}, format="json").status_code in (401, 403)


def test_the_initiator_or_staff_hide_a_comment_and_its_body_is_gone_from_the_list(thread):
    campaign, backer, comment = thread

    refused = api_client(backer).post(_url(campaign, comment, "hide"), {}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")

    response = api_client(campaign.initiator).post(
        _url(campaign, comment, "hide"), {"reason": "Off topic"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["hidden"], response.json()["body"]) == (True, None)
    (listed,) = api_client(UserFactory()).get(_url(campaign)).json()["results"]
    assert (listed["hidden"], listed["body"]) == (True, None)
    assert AuditEvent.objects.filter(action="comment_hide").count() == 1

    second = comment_create(campaign=campaign, actor=backer, body="Another")
    assert api_client(StaffFactory()).post(_url(campaign, second, "hide"), {}, format="json").status_code == 200


def test_a_comment_of_another_campaign_is_not_found(thread):
    campaign, _backer, _comment = thread
    elsewhere = LiveCampaignFactory()
    other = comment_create(campaign=elsewhere, actor=elsewhere.initiator, body="Hi")

    response = api_client(campaign.initiator).post(_url(campaign, other, "hide"), {}, format="json")

    assert response.status_code == 404
    other.refresh_from_db()
    assert other.hidden_at is None

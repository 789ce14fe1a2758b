"""The milestone endpoints: the plan on create, proof, votes, extension and abandoning; bad input changes nothing."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from pledges.tests.factories import pledge_held
from projects.milestones.models import Milestone, MilestoneStatus, MilestoneVote
from projects.models import Campaign
from projects.tests.factories import CategoryFactory
from settlement.models import RemainderRefund
from settlement.tests.milestone_helpers import campaign_with_milestones, succeed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def _plan(shares):
    today = timezone.localdate()
    return [
        {
            "title": f"Step {i}",
            "proof_required": "Photos",
            "target_date": str(today + timedelta(days=30 * i)),
            "share_bps": s,
        }
        for i, s in enumerate(shares, start=1)
    ]


def _campaign_body(**extra):
    return {
        "title": "Solar lamp",
        "summary": "A lamp",
        "category": CategoryFactory().pk,
        "goal": 100_000,
        **extra,
    }


def test_a_campaign_is_created_with_its_milestone_plan():
    me = UserFactory()
    response = api_client(me).post(
        "/api/v1/campaigns/", _campaign_body(milestones=_plan([2_500, 7_500])), format="json"
    )
    assert response.status_code == 201, response.content
    listed = api_client(me).get(f"/api/v1/campaigns/{response.json()['id']}/milestones/").json()
    assert [(m["position"], m["share_bps"], m["status"]) for m in listed] == [
        (1, 2_500, "planned"),
        (2, 7_500, "planned"),
    ]


@pytest.mark.parametrize(
    ("shares", "code"), [([3_000, 6_000], "shares_not_whole"), ([4_000, 6_000], "first_tranche_over_cap")]
)
def test_a_bad_plan_on_create_is_refused_and_creates_nothing(shares, code):
    response = api_client(UserFactory()).post(
        "/api/v1/campaigns/", _campaign_body(milestones=_plan(shares)), format="json"
    )
    assert_error(response, 400, code)
    assert not Campaign.objects.exists()
    assert not Milestone.objects.exists()


def test_proof_votes_and_abandoning_through_the_api():
    campaign = campaign_with_milestones([3_000, 7_000])
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer, amount=10_000)
    campaign = succeed(campaign)
    second = campaign.milestones.get(position=2)
    url = f"/api/v1/campaigns/{campaign.pk}/milestones/{second.pk}"

    assert_error(api_client(UserFactory()).post(f"{url}/proof/", {"proof_text": "mine"}, format="json"), 403)
    response = api_client(campaign.initiator).post(f"{url}/proof/", {"proof_text": "Photos"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == MilestoneStatus.VOTING
    assert_error(api_client(UserFactory()).post(f"{url}/votes/", {"approve": True}, format="json"), 403, "not_a_backer")
    response = api_client(backer).post(f"{url}/votes/", {"approve": True}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"approve": True, "weight": 10_000}
    assert_error(api_client(backer).post(f"{url}/votes/", {"approve": False}, format="json"), 409, "already_voted")
    assert list(MilestoneVote.objects.values_list("approve", flat=True)) == [True]

    assert_error(api_client(backer).post(f"/api/v1/campaigns/{campaign.pk}/abandon/", {}, format="json"), 403)
    response = api_client(campaign.initiator).post(f"/api/v1/campaigns/{campaign.pk}/abandon/", {}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["amount"] == 7_000
    assert RemainderRefund.objects.get(campaign=campaign).amount == 7_000

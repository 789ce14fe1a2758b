"""Milestone pages: the plan form, the section on the campaign page, proof and votes, in English and Chinese."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.tests.factories import pledge_held
from projects.milestones.models import Milestone, MilestoneStatus, MilestoneVote
from projects.tests.factories import CampaignFactory
from settlement.tests.milestone_helpers import campaign_with_milestones, succeed

pytestmark = pytest.mark.django_db


def _formset(rows):
    data = {"m-TOTAL_FORMS": str(len(rows)), "m-INITIAL_FORMS": "0"}
    today = timezone.localdate()
    for i, share in enumerate(rows):
        data |= {
            f"m-{i}-title": f"Step {i + 1}",
            f"m-{i}-proof_required": "Photos",
            f"m-{i}-target_date": str(today + timedelta(days=30 * (i + 1))),
            f"m-{i}-share_bps": str(share),
        }
    return data


def test_the_initiator_plans_milestones_in_the_browser_and_a_bad_plan_is_explained(client):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)
    url = f"/campaigns/{campaign.slug}/milestones/"
    assert client.get(url).status_code == 200
    refused = client.post(url, _formset([3_000, 6_000]))
    assert refused.status_code == 400
    assert "10,000" in refused.content.decode()
    assert not Milestone.objects.exists()
    assert client.post(url, _formset([3_000, 7_000])).status_code == 302
    assert list(Milestone.objects.values_list("share_bps", flat=True)) == [3_000, 7_000]


def test_someone_elses_plan_page_is_not_found(client):
    client.force_login(UserFactory())
    assert client.get(f"/campaigns/{CampaignFactory().slug}/milestones/").status_code == 404


@pytest.mark.parametrize(
    ("language", "heading", "approve"), [("en", "Milestones", "Approve"), ("zh-hans", "里程碑", "批准")]
)
def test_proof_and_a_backers_vote_through_the_campaign_page(client, language, heading, approve):
    campaign = campaign_with_milestones([3_000, 7_000])
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer, amount=10_000)
    campaign = succeed(campaign)
    second = campaign.milestones.get(position=2)
    client.cookies["django_language"] = language

    client.force_login(campaign.initiator)
    response = client.post(f"/campaigns/{campaign.slug}/milestones/{second.pk}/proof/", {"proof_text": "See photos"})
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.status == MilestoneStatus.VOTING

    client.force_login(backer)
    page = client.get(campaign.get_absolute_url(), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert heading in page
    assert approve in page
    assert "See photos" in page
    client.post(f"/campaigns/{campaign.slug}/milestones/{second.pk}/vote/", {"approve": "yes"})
    again = client.post(f"/campaigns/{campaign.slug}/milestones/{second.pk}/vote/", {"approve": "no"}, follow=True)
    assert again.status_code == 200
    assert list(MilestoneVote.objects.values_list("approve", flat=True)) == [True]

    client.force_login(UserFactory())
    stranger = client.post(f"/campaigns/{campaign.slug}/milestones/{second.pk}/vote/", {"approve": "yes"}, follow=True)
    assert stranger.status_code == 200
    assert MilestoneVote.objects.count() == 1


def test_the_campaign_page_with_milestones_runs_a_constant_number_of_queries(client, django_assert_max_num_queries):
    campaign = campaign_with_milestones([1_000] * 2 + [2_000] * 4)
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer, amount=5_000)
    campaign = succeed(campaign)
    client.force_login(backer)
    # The page's own (6 + 4 signed in) and the milestones section's vote weight and votes.
    with django_assert_max_num_queries(12):
        page = client.get(campaign.get_absolute_url())
    assert page.status_code == 200
    assert page.content.decode().count('class="milestone milestone-') == 6

"""The campaign page reads a section only when the campaign's row says it has something to show.

The row's counts and flag (``update_count``, ``comment_count``, ``has_milestone_plan``) are kept
by the services that write updates, comments and plans; these tests pin both the rule and the
queries it saves.
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.exceptions import NotAllowed
from pledges.tests.factories import pledge_held
from projects import selectors, views
from projects.milestones.services import milestones_plan_replace
from projects.models import Campaign, CampaignStatus
from projects.services import campaign_update_create, comment_create, comment_hide
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory
from settlement.tests.milestone_helpers import campaign_with_milestones, plan

pytestmark = pytest.mark.django_db


def _row(campaign) -> Campaign:
    return Campaign.objects.get(pk=campaign.pk)


def test_posting_updates_and_comments_counts_them_on_the_campaign_and_hiding_keeps_the_count():
    campaign = LiveCampaignFactory()
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer)
    campaign_update_create(campaign=campaign, actor=campaign.initiator, title="News", body="Body.")
    first = comment_create(campaign=campaign, actor=backer, body="Great!")
    comment_create(campaign=campaign, actor=campaign.initiator, body="Thanks!", parent=first)
    assert (_row(campaign).update_count, _row(campaign).comment_count) == (1, 2)

    comment_hide(comment=first, actor=campaign.initiator)  # still listed, as "This comment was hidden."

    assert _row(campaign).comment_count == 2


def test_a_refused_comment_is_not_counted():
    campaign = LiveCampaignFactory()
    with pytest.raises(NotAllowed):
        comment_create(campaign=campaign, actor=UserFactory(), body="Not a backer")
    assert _row(campaign).comment_count == 0


def test_the_milestone_flag_follows_the_plan():
    campaign = CampaignFactory(goal=1_000)
    milestones_plan_replace(campaign=campaign, plan=plan([3_000, 7_000]))
    assert _row(campaign).has_milestone_plan is True
    milestones_plan_replace(campaign=campaign, plan=[])
    assert _row(campaign).has_milestone_plan is False


def test_a_plain_campaign_page_with_rewards_is_three_queries(client, django_assert_num_queries):
    campaign = LiveCampaignFactory()
    RewardTierFactory(campaign=campaign)
    pledge_held(campaign=campaign)
    # the campaign with its visibility rule (and its initiator, whose row says they have no
    # delivery record to read), the reward tiers and the matches; no updates, comments or
    # milestones of this campaign to read
    with django_assert_num_queries(3):
        page = client.get(campaign.get_absolute_url()).content.decode()
    assert "No updates yet." in page
    assert "No comments yet." in page
    assert "Delivery record" not in page


def test_a_full_campaign_page_is_eight_queries_and_shows_every_section(client, django_assert_num_queries):
    campaign = campaign_with_milestones([3_000, 7_000])
    RewardTierFactory(campaign=campaign)
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer)
    campaign_update_create(campaign=campaign, actor=campaign.initiator, title="We ship in May", body="Body.")
    comment_create(campaign=campaign, actor=backer, body="Can't wait")
    # + the updates, the comments, the milestones, and the delivery record's milestones (a plan)
    with django_assert_num_queries(8):
        page = client.get(campaign.get_absolute_url()).content.decode()
    assert "We ship in May" in page
    assert "Can&#x27;t wait" in page
    assert "milestone" in page.lower()


def test_the_page_reads_the_columns_it_shows_and_not_the_markdown_sources_or_the_initiators_password(
    client, django_assert_num_queries
):
    campaign = LiveCampaignFactory()
    # still three queries: no column the page shows is left to a later read
    with django_assert_num_queries(3) as queries:
        page = client.get(campaign.get_absolute_url()).content.decode()
    campaign_read = queries.captured_queries[0]["sql"]
    assert '"projects_campaign"."description_html"' in campaign_read
    assert '"projects_campaign"."description",' not in campaign_read
    assert '"projects_campaign"."faq",' not in campaign_read
    assert "password" not in campaign_read
    assert campaign.title in page
    assert campaign.initiator.public_name in page


@pytest.mark.parametrize("status", [s for s in CampaignStatus if s != CampaignStatus.LIVE])
@pytest.mark.parametrize("viewer", ["initiator", "staff"])
def test_every_stage_of_the_page_needs_no_column_the_page_read_leaves_out(client, monkeypatch, status, viewer):
    """The same page, queries and words as with every column read, at every stage (drafts' review
    feedback, settlement, the paused notice), for its initiator and for staff."""
    campaign = LiveCampaignFactory(status=status, review_feedback="Show the prototype working.")
    RewardTierFactory(campaign=campaign)
    client.force_login(campaign.initiator if viewer == "initiator" else StaffFactory())

    def render():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(campaign.get_absolute_url())
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())
        return response.status_code, len(queries), page

    fewer = render()
    monkeypatch.setattr(views, "campaign_page_render_get", selectors.campaign_page_get)
    every = render()
    assert fewer[0] == 200
    assert fewer == every

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus, FundingModel
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory


@pytest.mark.django_db
def test_campaign_page_shows_goal_raised_backers_time_left_and_rewards(client):
    campaign = LiveCampaignFactory(
        title="Weather station", goal=100_000, deadline=timezone.now() + timedelta(days=10, hours=-2)
    )
    RewardTierFactory(campaign=campaign, title="Sticker", minimum_amount=1_000)
    RewardTierFactory(
        campaign=campaign,
        title="Early bird",
        minimum_amount=5_000,
        quantity_limit=2,
        claimed_count=2,
    )
    RewardTierFactory(
        campaign=campaign,
        title="The station",
        minimum_amount=20_000,
        quantity_limit=50,
        estimated_delivery=timezone.localdate().replace(day=1) + timedelta(days=200),
    )
    pledge_held(campaign=campaign, amount=25_000)

    page = client.get(campaign.get_absolute_url()).content.decode()

    assert "$250.00" in page
    assert "pledged of $1,000.00 goal" in page
    assert "25%" in page
    assert "10 days left" in page
    assert "Back this project" in page
    assert "Sold out" in page
    assert "50 of 50 left" in page
    assert "Estimated delivery" in page
    assert "If it does not, you are refunded in full" in page
    assert 'datetime="' in page  # machine-readable deadline, shown in the visitor's time zone


@pytest.mark.django_db
def test_flexible_funding_is_explained(client):
    campaign = LiveCampaignFactory(funding_model=FundingModel.FLEXIBLE)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "everything raised, even if the goal is not reached" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "banner"),
    [
        (CampaignStatus.SUCCEEDED, "Funded!"),
        (CampaignStatus.FAILED, "Every backer has been refunded in full"),
        (CampaignStatus.CANCELLED, "Cancelled"),
        (CampaignStatus.SUSPENDED, "Paused"),
        (CampaignStatus.CLOSING, "Funding has ended"),
    ],
)
def test_state_banners(client, status, banner):
    campaign = LiveCampaignFactory(status=status)
    if status == CampaignStatus.SUSPENDED:
        # Its page is for its backers, initiator and staff now (test_visibility.py).
        client.force_login(StaffFactory())
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert banner in page
    assert "Back this project" not in page


@pytest.mark.django_db
def test_upcoming_campaign_is_public_and_drafts_only_for_their_initiator(client):
    upcoming = CampaignFactory(status=CampaignStatus.APPROVED)
    assert "Upcoming" in client.get(upcoming.get_absolute_url()).content.decode()

    draft = CampaignFactory(status=CampaignStatus.CHANGES_REQUESTED, review_feedback="Add photos <please>.")
    assert client.get(draft.get_absolute_url()).status_code == 404
    client.force_login(UserFactory())
    assert client.get(draft.get_absolute_url()).status_code == 404
    client.force_login(draft.initiator)
    page = client.get(draft.get_absolute_url()).content.decode()
    assert "Preview" in page
    assert "Add photos &lt;please&gt;." in page


@pytest.mark.django_db
def test_initiator_is_not_offered_to_back_their_own_campaign(client):
    campaign = LiveCampaignFactory()
    client.force_login(campaign.initiator)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "you cannot back it" in page
    assert "Back this project" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("logged_in", [False, True])
def test_campaign_page_runs_a_constant_number_of_queries(client, django_assert_max_num_queries, logged_in):
    if logged_in:
        client.force_login(UserFactory())
    campaign = LiveCampaignFactory()
    RewardTierFactory(campaign=campaign)
    pledge_held(campaign=campaign)
    # campaign, rewards, updates, comments, matches, milestones, the initiator's delivery record
    # (milestones, shipments: with rewards only) (+ session, user, backer?, follow and reminder state)
    budget = 8 + (4 if logged_in else 0)
    with django_assert_max_num_queries(budget):
        assert client.get(campaign.get_absolute_url()).status_code == 200
    for _ in range(20):
        RewardTierFactory(campaign=campaign, quantity_limit=5)
    for _ in range(10):
        pledge_held(campaign=campaign)
    with django_assert_max_num_queries(budget):
        assert client.get(campaign.get_absolute_url()).status_code == 200


@pytest.mark.django_db
def test_the_initiator_is_not_told_they_can_cancel_a_pledge_on_their_own_campaign(client):
    campaign = LiveCampaignFactory()
    client.force_login(campaign.initiator)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "This is your campaign, so you cannot back it." in page
    assert "You can cancel your pledge" not in page
    client.logout()
    assert "You can cancel your pledge" in client.get(campaign.get_absolute_url()).content.decode()

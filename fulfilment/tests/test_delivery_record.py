"""The initiator's delivery record on the campaign page, the creator page and the review screen."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fulfilment.selectors import delivery_record_of
from fulfilment.services import delivery_confirm, tier_mark_shipped
from pledges.models import Pledge
from projects.milestones.models import Milestone
from projects.models import RewardTier
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.milestone_helpers import campaign_with_milestones

from .helpers import funded_campaign_with_rewards, succeed

pytestmark = pytest.mark.django_db


def _shipped_campaign():
    campaign, (tier_a, tier_b) = funded_campaign_with_rewards(amounts=[10_000, 20_000, 30_000])
    today = timezone.localdate()
    RewardTier.objects.filter(pk=tier_a.pk).update(estimated_delivery=today - timedelta(days=10))
    RewardTier.objects.filter(pk=tier_b.pk).update(estimated_delivery=today)
    campaign = succeed(campaign)
    tier_mark_shipped(tier_id=tier_a.pk, actor=campaign.initiator, shipped_on=today)  # 10 days late
    tier_mark_shipped(tier_id=tier_b.pk, actor=campaign.initiator, shipped_on=today)  # on time
    first = Pledge.objects.filter(campaign=campaign).order_by("id").first()
    delivery_confirm(pledge_id=first.pk, actor=first.backer)
    return campaign


def test_record_counts_on_time_shipments_median_delay_and_confirmations():
    campaign = _shipped_campaign()
    record = delivery_record_of(initiator_id=campaign.initiator_id)
    assert (record.shipments, record.shipments_on_time, record.median_delay_days) == (2, 1, 5)
    assert (record.deliveries, record.confirmed, record.confirmed_percent, record.refunded_backers) == (3, 1, 33, 0)


def test_record_shows_alike_to_visitors_and_signed_in_users_on_campaign_and_creator_pages(client, backer):
    campaign = _shipped_campaign()
    urls = [campaign.get_absolute_url(), f"/accounts/people/{campaign.initiator.username}/"]
    for url in urls:
        anonymous = client.get(url).content.decode()
        assert "Rewards shipped on time: 1 of 2" in anonymous
        assert "Backers who confirmed receipt: 33 %" in anonymous
    client.force_login(backer)
    for url in urls:
        assert "Rewards shipped on time: 1 of 2" in client.get(url).content.decode()


def test_a_campaign_without_rewards_runs_no_record_query(client):
    campaign = LiveCampaignFactory()
    with CaptureQueriesContext(connection) as queries:
        page = client.get(campaign.get_absolute_url())
    assert page.status_code == 200
    assert not [q for q in queries.captured_queries if "fulfilment_" in q["sql"]]
    assert "Delivery record" not in page.content.decode()


def test_the_record_is_computed_once_for_many_pages_and_forgotten_when_a_tier_ships(
    client, backer, django_capture_on_commit_callbacks
):
    campaign, (tier_a, tier_b) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    client.force_login(backer)  # pages rendered for a signed-in visitor, not served from the page cache
    # Nothing shipped or planned yet: the initiator's row says there is no record, so none is read.
    with CaptureQueriesContext(connection) as before:
        page = client.get(campaign.get_absolute_url()).content.decode()
    assert not [q for q in before.captured_queries if "fulfilment_" in q["sql"]]
    assert "Delivery record" not in page

    with django_capture_on_commit_callbacks(execute=True):
        tier_mark_shipped(tier_id=tier_a.pk, actor=campaign.initiator, shipped_on=timezone.localdate())

    with CaptureQueriesContext(connection) as first:
        page = client.get(campaign.get_absolute_url()).content.decode()
    with CaptureQueriesContext(connection) as again:
        assert "Rewards shipped on time: 1 of 1" in client.get(campaign.get_absolute_url()).content.decode()
    assert "Rewards shipped on time: 1 of 1" in page
    assert [q for q in first.captured_queries if "fulfilment_shipment" in q["sql"]]  # read for the first page only
    assert not [q for q in again.captured_queries if "fulfilment_shipment" in q["sql"]]

    with django_capture_on_commit_callbacks(execute=True):
        tier_mark_shipped(tier_id=tier_b.pk, actor=campaign.initiator, shipped_on=timezone.localdate())

    assert "Rewards shipped on time: 2 of 2" in client.get(campaign.get_absolute_url()).content.decode()


def test_an_initiator_with_no_plan_and_no_shipment_costs_the_record_one_query(django_assert_num_queries):
    campaign, _tiers = funded_campaign_with_rewards(amounts=[10_000])
    with django_assert_num_queries(1):
        record = delivery_record_of(initiator_id=campaign.initiator_id)
    assert record.empty


def test_milestones_count_once_due_and_on_time_by_their_target_day(django_assert_num_queries):
    campaign = campaign_with_milestones([3_000, 3_000, 4_000])
    today = timezone.localdate()
    second, third = Milestone.objects.filter(campaign=campaign, position__gt=1).order_by("position")
    Milestone.objects.filter(pk=second.pk).update(
        target_date=today - timedelta(days=5), submitted_at=timezone.now() - timedelta(days=6)
    )
    Milestone.objects.filter(pk=third.pk).update(target_date=today - timedelta(days=1))  # due, no proof: late
    # the initiator's campaigns with a plan or a shipment, then their milestones (no shipment to count)
    with django_assert_num_queries(2):
        record = delivery_record_of(initiator_id=campaign.initiator_id)
    assert (record.milestones_due, record.milestones_on_time, record.shipments) == (2, 1, 0)
    assert not record.empty


def test_the_initiators_row_says_there_is_a_record_once_a_plan_or_a_shipment_gives_them_one():
    from accounts.models import User

    def flag(campaign) -> bool:
        return User.objects.get(pk=campaign.initiator_id).has_delivery_record

    planned = campaign_with_milestones([3_000, 7_000])
    campaign, (tier_a, _tier_b) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    assert flag(planned) is True
    assert flag(campaign) is False  # nothing shipped yet: its pages read no record at all

    tier_mark_shipped(tier_id=tier_a.pk, actor=campaign.initiator, shipped_on=timezone.localdate())

    assert flag(campaign) is True
    assert not delivery_record_of(initiator_id=campaign.initiator_id).empty

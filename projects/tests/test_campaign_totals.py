"""The campaign's running totals and the one "open for pledges" rule, on SQLite and PostgreSQL.

``campaign_add_to_totals`` is written-out SQL; these tests hold it to the same answers as the
queryset method and the model property, on whichever database the suite runs.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus
from projects.services import campaign_add_to_totals, campaign_take_from_totals
from projects.tests.factories import LiveCampaignFactory

pytestmark = pytest.mark.django_db

BEFORE_AND_AFTER_DEADLINE = [timedelta(hours=1), -timedelta(seconds=1)]


def _pledge(campaign, backer, *, status=PledgeStatus.HELD, amount=1_000, legacy_duplicate=False) -> Pledge:
    return Pledge.objects.create(
        campaign=campaign,
        backer=backer,
        amount=amount,
        currency=campaign.currency,
        status=status,
        idempotency_key=f"k-{Pledge.objects.count()}",
        legacy_duplicate=legacy_duplicate,
    )


@pytest.mark.parametrize("status", CampaignStatus.values)
@pytest.mark.parametrize("to_deadline", BEFORE_AND_AFTER_DEADLINE)
def test_the_rule_reads_the_same_in_the_queryset_the_property_and_the_totals_update(status, to_deadline):
    campaign = LiveCampaignFactory(status=status, deadline=timezone.now() + to_deadline)
    pledge = _pledge(campaign, UserFactory())
    expected = status == CampaignStatus.LIVE and to_deadline > timedelta(0)

    assert campaign.is_open_for_pledges is expected
    assert Campaign.objects.open_for_pledges().filter(pk=campaign.pk).exists() is expected
    added = campaign_add_to_totals(
        campaign_id=campaign.pk, pledge_id=pledge.pk, backer_id=pledge.backer_id, amount=pledge.amount
    )
    assert added is expected
    campaign.refresh_from_db()
    assert (campaign.pledged_amount, campaign.backer_count) == ((1_000, 1) if expected else (0, 0))


def test_open_for_pledges_at_a_given_time():
    campaign = LiveCampaignFactory(deadline=timezone.now() + timedelta(days=1))
    assert Campaign.objects.open_for_pledges(now=timezone.now() + timedelta(hours=23)).filter(pk=campaign.pk)
    assert not Campaign.objects.open_for_pledges(now=timezone.now() + timedelta(days=2)).filter(pk=campaign.pk)


def test_a_backer_is_counted_once_however_many_pledges_they_hold():
    campaign = LiveCampaignFactory()
    backer = UserFactory()
    # Two open pledges of one backer exist only from before one pledge per campaign (flagged).
    _pledge(campaign, backer, status=PledgeStatus.HELD, legacy_duplicate=True)
    _pledge(campaign, UserFactory(), status=PledgeStatus.REFUNDED)  # someone else's: not this backer
    second = _pledge(campaign, backer, amount=2_500)

    assert campaign_add_to_totals(campaign_id=campaign.pk, pledge_id=second.pk, backer_id=backer.pk, amount=2_500)

    campaign.refresh_from_db()
    assert (campaign.pledged_amount, campaign.backer_count) == (2_500, 0)  # the amount added, no new backer


def test_a_backer_whose_earlier_pledge_was_refunded_counts_again():
    campaign = LiveCampaignFactory()
    backer = UserFactory()
    _pledge(campaign, backer, status=PledgeStatus.CANCELLED)
    again = _pledge(campaign, backer)

    assert campaign_add_to_totals(campaign_id=campaign.pk, pledge_id=again.pk, backer_id=backer.pk, amount=1_000)

    campaign.refresh_from_db()
    assert campaign.backer_count == 1


@pytest.mark.parametrize(
    ("status", "to_deadline", "cancel_taken", "refund_taken"),
    [
        (CampaignStatus.LIVE, timedelta(hours=1), True, True),
        (CampaignStatus.LIVE, -timedelta(seconds=1), False, True),
        (CampaignStatus.SUSPENDED, timedelta(hours=1), False, True),
        (CampaignStatus.CLOSING, -timedelta(hours=1), False, False),
        (CampaignStatus.SUCCEEDED, -timedelta(hours=1), False, False),
    ],
)
def test_a_returned_pledge_leaves_the_totals_only_while_it_may_be_returned(
    status, to_deadline, cancel_taken, refund_taken
):
    campaign = LiveCampaignFactory(status=status, deadline=timezone.now() + to_deadline, pledged_amount=5_000)

    cancelled = campaign_take_from_totals(campaign_id=campaign.pk, amount=1_000, open_for_pledges_only=True)
    refunded = campaign_take_from_totals(campaign_id=campaign.pk, amount=1_000, open_for_pledges_only=False)

    assert (cancelled, refunded) == (cancel_taken, refund_taken)
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 5_000 - 1_000 * (cancel_taken + refund_taken)

"""create_if_claimed: a claim and the row that owns it are written together or not at all (PostgreSQL)."""

import pytest
from django.db import IntegrityError, connection
from django.db.models import F

from accounts.tests.factories import UserFactory
from crowdfund_site.db import NothingClaimed, create_if_claimed
from pledges.models import Pledge
from projects.models import RewardTier
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="one data-modifying WITH is PostgreSQL's"),
]


def _pledge_fields(campaign, reward, backer, key):
    return {
        "backer": backer,
        "campaign": campaign,
        "reward": reward,
        "amount": 2_500,
        "currency": campaign.currency,
        "idempotency_key": key,
        "request_fingerprint": "f",
    }


def _claim_one(reward):
    return RewardTier.objects.filter(pk=reward.pk, claimed_count__lt=F("quantity_limit"))


def test_the_row_is_written_with_its_claim_and_read_back_as_saved():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500, quantity_limit=2)
    backer = UserFactory(password=None)

    pledge = create_if_claimed(
        _claim_one(reward),
        {"claimed_count": F("claimed_count") + 1},
        Pledge,
        **_pledge_fields(campaign, reward, backer, "k1"),
    )

    assert Pledge.objects.get() == pledge
    assert Pledge.objects.get().reward_id == reward.pk
    reward.refresh_from_db()
    assert reward.claimed_count == 1


def test_nothing_claimed_writes_nothing():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500, quantity_limit=1, claimed_count=1)

    with pytest.raises(NothingClaimed):
        create_if_claimed(
            _claim_one(reward),
            {"claimed_count": F("claimed_count") + 1},
            Pledge,
            **_pledge_fields(campaign, reward, UserFactory(password=None), "k1"),
        )

    assert not Pledge.objects.exists()
    reward.refresh_from_db()
    assert reward.claimed_count == 1


def test_a_row_refused_by_a_unique_constraint_gives_its_claim_back():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500, quantity_limit=5)
    backer = UserFactory(password=None)
    claim = {"claimed_count": F("claimed_count") + 1}
    create_if_claimed(_claim_one(reward), claim, Pledge, **_pledge_fields(campaign, reward, backer, "same-key"))

    with pytest.raises(IntegrityError):
        create_if_claimed(_claim_one(reward), claim, Pledge, **_pledge_fields(campaign, reward, backer, "same-key"))

    assert Pledge.objects.count() == 1
    reward.refresh_from_db()
    assert reward.claimed_count == 1

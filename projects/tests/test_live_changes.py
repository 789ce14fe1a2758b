"""Changes a live campaign still takes from pricing advice, at the service: a new tier, a lower price
for a tier nobody holds, the deadline extended once within 60 days; refusals change nothing."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from pledges.tests.factories import pledge_held
from projects.live_changes import (
    campaign_deadline_extend,
    deadline_extension_days_left,
    reward_price_lower,
    reward_tier_add_live,
)
from projects.models import CampaignDeadlineExtension, CampaignStatus, RewardTier
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db


def _launched(days_ago: int, days_left: int, **fields):
    now = timezone.now()
    return LiveCampaignFactory(
        launched_at=now - timedelta(days=days_ago), deadline=now + timedelta(days=days_left), **fields
    )


def test_the_deadline_moves_within_60_days_of_launch_and_once_only():
    campaign = _launched(20, 10)  # 30 days: 30 more at most
    assert deadline_extension_days_left(campaign) == 30
    for days in (0, -3, 31, True, "7"):
        with pytest.raises(InvalidInput) as refused:
            campaign_deadline_extend(campaign=campaign, actor=campaign.initiator, days=days)
        assert refused.value.code == "extension_too_long"
    with pytest.raises(NotAllowed):
        campaign_deadline_extend(campaign=campaign, actor=UserFactory(), days=5)
    old = campaign.deadline
    extension = campaign_deadline_extend(campaign=campaign, actor=campaign.initiator, days=30)
    campaign.refresh_from_db()
    assert campaign.deadline == old + timedelta(days=30) == campaign.launched_at + timedelta(days=60)
    assert campaign.duration_days == 60
    assert (extension.from_deadline, extension.to_deadline) == (old, campaign.deadline)
    assert deadline_extension_days_left(campaign) == 0
    with pytest.raises(Conflict) as refused:
        campaign_deadline_extend(campaign=campaign, actor=campaign.initiator, days=1)
    assert refused.value.code == "already_extended"
    assert CampaignDeadlineExtension.objects.count() == 1


def test_no_extension_at_the_longest_campaign_nor_once_it_stopped_taking_pledges():
    longest = _launched(50, 10)
    assert deadline_extension_days_left(longest) == 0
    with pytest.raises(Conflict) as refused:
        campaign_deadline_extend(campaign=longest, actor=longest.initiator, days=1)
    assert refused.value.code == "extension_too_long"
    ended = _launched(31, -1)
    suspended = _launched(5, 10, status=CampaignStatus.SUSPENDED)
    for campaign in (ended, suspended):
        with pytest.raises(Conflict) as refused:
            campaign_deadline_extend(campaign=campaign, actor=campaign.initiator, days=1)
        assert refused.value.code == "invalid_state"
    assert not CampaignDeadlineExtension.objects.exists()


def test_a_lower_price_only_for_a_tier_nobody_holds_and_without_steps():
    campaign = LiveCampaignFactory()
    empty = RewardTierFactory(campaign=campaign, minimum_amount=10_000)
    held = RewardTierFactory(campaign=campaign, minimum_amount=10_000)
    stepped = RewardTierFactory(
        campaign=campaign,
        minimum_amount=10_000,
        quantity_limit=50,
        price_steps=[{"price": 8_000, "until_claimed": 10, "until": None}],
    )
    pledge = pledge_held(campaign=campaign, amount=10_000, reward=held)
    for reward, code in ((held, "reward_has_backers"), (stepped, "reward_has_steps")):
        with pytest.raises(Conflict) as refused:
            reward_price_lower(reward=reward, actor=campaign.initiator, price=8_000)
        assert refused.value.code == code
    for price in (10_000, 12_000, 0, -1):
        with pytest.raises(InvalidInput):
            reward_price_lower(reward=empty, actor=campaign.initiator, price=price)
    with pytest.raises(NotAllowed):
        reward_price_lower(reward=empty, actor=UserFactory(), price=8_000)
    reward_price_lower(reward=empty, actor=campaign.initiator, price=8_000)
    assert list(
        RewardTier.objects.filter(campaign=campaign).order_by("pk").values_list("minimum_amount", flat=True)
    ) == [
        8_000,
        10_000,
        10_000,
    ]
    pledge.refresh_from_db()
    assert pledge.amount == 10_000


def test_a_tier_added_while_live_and_never_before_launch_or_after_the_end():
    campaign = LiveCampaignFactory()
    tier = reward_tier_add_live(campaign=campaign, actor=campaign.initiator, title="  Sticker ", minimum_amount=500)
    assert (tier.title, tier.minimum_amount, tier.quantity_limit, tier.price_steps) == ("Sticker", 500, None, [])
    with pytest.raises(InvalidInput):
        reward_tier_add_live(campaign=campaign, actor=campaign.initiator, title=" ", minimum_amount=500)
    with pytest.raises(InvalidInput):
        reward_tier_add_live(campaign=campaign, actor=campaign.initiator, title="Free", minimum_amount=0)
    for other in (CampaignFactory(), _launched(31, -1)):
        with pytest.raises(Conflict):
            reward_tier_add_live(campaign=other, actor=other.initiator, title="Late", minimum_amount=500)
    assert RewardTier.objects.count() == 1


def test_a_backer_is_told_of_the_new_deadline_in_their_language(celery_eager, django_capture_on_commit_callbacks):
    campaign = _launched(10, 20, title="Tide clocks")
    pledge_held(campaign=campaign, backer=UserFactory(preferred_language="zh-hans"))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        campaign_deadline_extend(campaign=campaign, actor=campaign.initiator, days=7)
    (message,) = mail.outbox
    assert message.subject == "Tide clocks 的截止时间已推迟"
    assert "您支持的项目 Tide clocks 的发起人将截止时间延长了一次" in message.body
    assert "目标金额没有改变" in message.body

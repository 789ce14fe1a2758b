"""Campaigns with late pledges, made the way an initiator and backers make them: through the services."""

from datetime import timedelta

from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.late_pledges import late_offer_set, late_pledge_create
from pledges.tests.factories import VISA, new_key, pledge_held
from projects.models import Campaign
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import campaigns_close_due, settlement_run

LATE_PRICE = 3_000  # the reward's campaign price is 2,500


def campaign_with_late_offer(*, goal: int = 5_000, quantity_limit: int | None = None, fee_bps: int = 500):
    """Return a live campaign whose initiator opened late pledges for its one reward at LATE_PRICE, and the reward."""
    campaign = LiveCampaignFactory(goal=goal, platform_fee_bps=fee_bps)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500, quantity_limit=quantity_limit)
    late_offer_set(campaign=campaign, actor=campaign.initiator, prices={reward.pk: LATE_PRICE})
    return campaign, reward


def campaign_settle(campaign: Campaign, *, raised: int | None = None) -> Campaign:
    """Pledge ``raised`` (default: the goal), pass the deadline, close and settle the campaign; return it."""
    pledge_held(campaign=campaign, amount=raised if raised is not None else campaign.goal)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def succeeded_with_late_offer(**kwargs):
    """Return a campaign that succeeded with late pledges open for its reward, and the reward."""
    campaign, reward = campaign_with_late_offer(**kwargs)
    return campaign_settle(campaign), reward


def late_pledge(*, campaign, reward, backer=None, amount: int = LATE_PRICE, key: str | None = None, token=VISA):
    return late_pledge_create(
        backer=backer or UserFactory(),
        campaign=campaign,
        reward=reward,
        amount=amount,
        currency=campaign.currency,
        payment_token=token,
        idempotency_key=key or new_key(),
    )

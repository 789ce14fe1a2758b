"""Succeeded campaigns with reward pledges, for fulfilment's tests."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.tests.factories import UserFactory
from escrow.ledger import account_balances
from escrow.vocabulary_holdback import campaign_holdback_code
from pledges.models import Pledge
from pledges.testing import held_pledges_create_bulk
from projects.models import Campaign, RewardTier
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import campaigns_close_due, settlement_run


def funded_campaign_with_rewards(*, amounts: list[int], tiers: int = 2, holdback_bps: int | None = None, fee_bps=500):
    """A live campaign with ``tiers`` rewards and one held pledge per amount (rewards in turn)."""
    campaign = LiveCampaignFactory(goal=1, platform_fee_bps=fee_bps, delivery_holdback_bps=holdback_bps)
    rewards = [RewardTierFactory(campaign=campaign, minimum_amount=1) for _ in range(tiers)]
    held_pledges_create_bulk(campaign=campaign, count=len(amounts), amount=lambda i: amounts[i])
    for i, pk in enumerate(Pledge.objects.filter(campaign=campaign).order_by("id").values_list("pk", flat=True)):
        Pledge.objects.filter(pk=pk).update(reward=rewards[i % tiers])
    return campaign, rewards


def succeed(campaign: Campaign) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert campaign.pk in campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def overdue_campaign(amounts: list[int], *, tiers: int = 2):
    """A succeeded campaign whose tiers were due to be delivered a day past the grace ago."""
    campaign, rewards = funded_campaign_with_rewards(amounts=amounts, tiers=tiers)
    due = timezone.localdate() - timedelta(days=settings.FULFILMENT_NOT_DELIVERED_GRACE_DAYS + 1)
    RewardTier.objects.filter(campaign=campaign).update(estimated_delivery=due)
    return succeed(campaign), rewards


def holdback_balance(campaign: Campaign) -> int:
    code = campaign_holdback_code(campaign.pk)
    return account_balances(codes=[code]).get((code, campaign.currency), 0)


def balance(code: str, currency: str = "USD") -> int:
    return account_balances(codes=[code]).get((code, currency), 0)


def finance_user():
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="decide_delivery_report"))
    return type(user).objects.get(pk=user.pk)

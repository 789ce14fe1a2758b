"""Campaigns with milestones for settlement's tests: planned through the service, then live and funded."""

from datetime import timedelta

from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.tests.factories import UserFactory
from escrow.ledger import account_balances
from escrow.vocabulary_tranches import campaign_staged_code
from pledges.testing import held_pledges_create_bulk
from projects.milestones.services import MilestoneInput, milestones_plan_set
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CampaignFactory
from settlement.services import campaigns_close_due, settlement_run


def plan(shares: list[int]) -> list[MilestoneInput]:
    today = timezone.localdate()
    return [
        MilestoneInput(f"Step {i}", f"Photos of step {i}", today + timedelta(days=30 * i), bps)
        for i, bps in enumerate(shares, start=1)
    ]


def campaign_with_milestones(shares: list[int], *, goal: int = 1_000, fee_bps: int = 500) -> Campaign:
    campaign = CampaignFactory(goal=goal, platform_fee_bps=fee_bps)
    milestones_plan_set(campaign=campaign, actor=campaign.initiator, plan=plan(shares))
    Campaign.objects.filter(pk=campaign.pk).update(
        status=CampaignStatus.LIVE, launched_at=timezone.now(), deadline=timezone.now() + timedelta(days=30)
    )
    campaign.refresh_from_db()
    return campaign


def succeed(campaign: Campaign, *, pledges: int = 0, amount=None) -> Campaign:
    """Fund ``campaign`` with bulk pledges (if asked), close it and settle it; return it fresh."""
    if pledges:
        held_pledges_create_bulk(campaign=campaign, count=pledges, **({"amount": amount} if amount else {}))
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert campaign.pk in campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def staged_balance(campaign: Campaign) -> int:
    code = campaign_staged_code(campaign.pk)
    return account_balances(codes=[code]).get((code, campaign.currency), 0)


def finance_user(*perms: str):
    user = UserFactory(is_staff=True)
    for perm in perms or ("sign_off_milestone", "declare_milestone_failure"):
        user.user_permissions.add(Permission.objects.get(codename=perm))
    return type(user).objects.get(pk=user.pk)

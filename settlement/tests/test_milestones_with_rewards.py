"""A campaign with milestones and rewards: its tranches are the only thing held, never a holdback too.

Each later tranche already waits for the backers' vote and staff's sign-off, and what is never
released goes back to the backers, so the delivery holdback would hold the same money twice
under two rules. Such a campaign keeps none; asking for one with a plan is refused at creation.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from crowdfund_site.exceptions import Conflict, InvalidInput
from crowdfund_site.money import allocate
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import PLATFORM_REVENUE, initiator_payout_code
from fulfilment.models import Delivery, Holdback
from fulfilment.services import tier_declare_not_delivered
from fulfilment.tests.helpers import finance_user as fulfilment_finance_user
from fulfilment.tests.helpers import holdback_balance
from pledges.models import Pledge
from pledges.testing import held_pledges_create_bulk
from projects.milestones.services import campaign_create_with_milestones
from projects.models import Campaign, RewardTier
from projects.services import campaign_update
from projects.tests.factories import CategoryFactory, RewardTierFactory
from settlement.models import RemainderCause
from settlement.remainder import remainder_refund_run, remainder_refund_start
from settlement.tests.milestone_helpers import campaign_with_milestones, plan, staged_balance, succeed
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


def _balance(code: str) -> int:
    return account_balances(codes=[code]).get((code, "USD"), 0)


def test_backers_of_rewards_in_a_staged_campaign_get_back_everything_not_released_and_nothing_is_held_twice():
    campaign = campaign_with_milestones([3_000, 7_000], goal=1)
    Campaign.objects.filter(pk=campaign.pk).update(delivery_holdback_bps=1_000)  # chosen before the plan
    mug = RewardTierFactory(campaign=campaign, minimum_amount=1)
    amounts = [1_001, 2_003, 3_007, 999, 5_011]
    held_pledges_create_bulk(campaign=campaign, count=len(amounts), amount=lambda i: amounts[i])
    Pledge.objects.filter(campaign=campaign).update(reward=mug)
    campaign = succeed(campaign)
    assert set(Delivery.objects.filter(campaign=campaign).values_list("pledge__reward", flat=True)) == {mug.pk}
    raised = sum(amounts)
    first = allocate(raised, [3_000, 7_000])[0]
    # Only the first tranche left escrow; the rest waits in staged escrow, none in a holdback.
    assert staged_balance(campaign) == raised - first
    assert holdback_balance(campaign) == 0
    assert not Holdback.objects.filter(campaign=campaign, amount__gt=0).exists()
    assert not Delivery.objects.filter(campaign=campaign, part__gt=0).exists()

    remainder_refund_start(campaign=campaign, actor=campaign.initiator, cause=RemainderCause.ABANDONED, enqueue=False)
    remainder_refund_run(campaign_id=campaign.pk)
    refunded = GatewayOperation.objects.filter(kind=OperationKind.REFUND).aggregate(t=Sum("amount"))["t"]
    fees = _balance(PLATFORM_REVENUE)
    paid_out = _balance(initiator_payout_code(campaign.initiator_id))
    assert paid_out + fees + refunded == raised
    assert paid_out + fees == first  # never more released than the tranche
    assert refunded == raised - first
    for pledge in Pledge.objects.filter(campaign=campaign):
        charge = GatewayOperation.objects.get(kind=OperationKind.CHARGE, idempotency_key=f"charge:pledge:{pledge.pk}")
        assert 0 < charge.refunded_amount <= pledge.amount
    assert staged_balance(campaign) == holdback_balance(campaign) == 0
    # No holdback: no tier of it is ever listed overdue or declared not delivered.
    RewardTier.objects.filter(pk=mug.pk).update(
        estimated_delivery=timezone.localdate() - timedelta(days=settings.FULFILMENT_NOT_DELIVERED_GRACE_DAYS + 5)
    )
    with pytest.raises(Conflict, match="no part of a holdback"):
        tier_declare_not_delivered(tier_id=mug.pk, actor=fulfilment_finance_user(), reason="x")
    assert ledger_verify() == []


def test_asking_for_a_holdback_with_a_milestone_plan_is_refused_at_creation_and_nothing_is_created(django_user_model):
    initiator = django_user_model.objects.create_user(username="ada", email="ada@example.com", password="x")
    fields = {"title": "Kiln", "summary": "A kiln", "category": CategoryFactory(), "goal": 10_000}
    with pytest.raises(InvalidInput, match="keeps no delivery holdback") as refused:
        campaign_create_with_milestones(
            initiator=initiator, milestones=plan([3_000, 7_000]), delivery_holdback_bps=1_000, **fields
        )
    assert (refused.value.code, refused.value.field) == ("holdback_with_milestones", "delivery_holdback_bps")
    assert not Campaign.objects.exists()
    campaign = campaign_create_with_milestones(
        initiator=initiator, milestones=plan([3_000, 7_000]), delivery_holdback_bps=0, **fields
    )
    with pytest.raises(InvalidInput, match="keeps no delivery holdback"):
        campaign_update(campaign=campaign, actor=initiator, delivery_holdback_bps=500)
    campaign.refresh_from_db()
    assert campaign.delivery_holdback_bps == 0


def test_the_api_refuses_a_holdback_with_milestones_with_a_clear_400(client, django_user_model):
    initiator = django_user_model.objects.create_user(username="ada", email="ada@example.com", password="x")
    client.force_login(initiator)
    today = timezone.localdate()
    body = {
        "title": "Kiln",
        "summary": "A kiln",
        "category": CategoryFactory().pk,
        "goal": 10_000,
        "delivery_holdback_bps": 1_000,
        "milestones": [
            {
                "title": "Build",
                "proof_required": "Photos",
                "target_date": str(today + timedelta(days=30)),
                "share_bps": 3_000,
            },
            {
                "title": "Ship",
                "proof_required": "Receipts",
                "target_date": str(today + timedelta(days=90)),
                "share_bps": 7_000,
            },
        ],
    }
    response = client.post("/api/v1/campaigns/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "holdback_with_milestones"
    assert "keeps no delivery holdback" in response.json()["detail"]
    assert not Campaign.objects.exists()


def test_the_funding_step_of_a_staged_campaign_shows_no_holdback_and_the_milestones_page_says_why(client):
    campaign = campaign_with_milestones([3_000, 7_000])
    Campaign.objects.filter(pk=campaign.pk).update(status="draft", delivery_holdback_bps=1_000)
    client.force_login(campaign.initiator)
    funding = client.get(reverse("projects:campaign_edit", args=[campaign.slug, "funding"])).content.decode()
    assert 'name="delivery_holdback_percent" value="0"' in funding
    page = client.get(reverse("projects:campaign_milestones", args=[campaign.slug])).content.decode()
    assert "keeps no delivery holdback" in page
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = client.get(reverse("projects:campaign_milestones", args=[campaign.slug])).content.decode()
    assert "不保留交付保留金" in page

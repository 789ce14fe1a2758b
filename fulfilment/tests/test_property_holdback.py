"""Random reward pledges and random received / upheld sets keep the holdback whole.

The split alone (``holdback_split``) on any amounts, and the whole flow through the real
services and the sandbox gateway, some tiers shipped and some never shipped and declared not
delivered, refunded in batches of any size: released (fees included) + refunded = holdback, no
pledge refunded above its part or what it paid, and ``ledger_verify()`` finds nothing.
"""

import random
from datetime import timedelta

from django.conf import settings as django_settings
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from crowdfund_site.money import allocate
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import PLATFORM_REVENUE, initiator_payout_code
from fulfilment.models import Delivery, Holdback
from fulfilment.selectors import holdback_split
from fulfilment.services import (
    delivery_confirm,
    delivery_report,
    report_decide,
    tier_declare_not_delivered,
    tier_mark_shipped,
)
from settlement.holdback import holdbacks_settle_ready
from settlement.verification import ledger_verify

from .helpers import balance, finance_user, funded_campaign_with_rewards, holdback_balance, succeed

FEE_BPS = 500


@given(
    bps=st.integers(min_value=0, max_value=10_000),
    paid=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=500),
)
def test_split_parts_sum_to_the_holdback_and_stay_within_each_pledge(bps, paid):
    amount, parts = holdback_split(bps=bps, paid=paid)
    assert sum(parts) == amount <= sum(paid)
    assert all(0 <= part <= p for part, p in zip(parts, paid, strict=True))


class HoldbackProperties(TestCase):
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        pledges=st.integers(min_value=1, max_value=60),
        tiers=st.integers(min_value=1, max_value=4),
        bps=st.integers(min_value=0, max_value=5_000),
        seed=st.integers(min_value=0, max_value=2**32),
        batch=st.integers(min_value=1, max_value=50),
    )
    def test_received_upheld_and_never_shipped_in_any_mix_keep_the_holdback_whole(
        self, pledges, tiers, bps, seed, batch
    ):
        rng = random.Random(seed)
        amounts = [rng.choice([1, 99, 2_500, rng.randint(1, 1_000_000)]) for _ in range(pledges)]
        campaign, rewards = funded_campaign_with_rewards(
            amounts=amounts, tiers=tiers, holdback_bps=bps, fee_bps=FEE_BPS
        )
        campaign = succeed(campaign)
        kept = Holdback.objects.get(campaign=campaign).amount
        finance = finance_user()
        never_shipped = {tier.pk for tier in rewards if rng.random() < 0.3}
        overdue = timezone.localdate(campaign.deadline) + timedelta(
            days=django_settings.FULFILMENT_NOT_DELIVERED_GRACE_DAYS + 1
        )
        for tier in rewards:
            if tier.pk in never_shipped:
                if Delivery.objects.filter(tier=tier, part__gt=0).exists():
                    tier_declare_not_delivered(tier_id=tier.pk, actor=finance, reason="never shipped", today=overdue)
            else:
                tier_mark_shipped(tier_id=tier.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
        refunded_parts = 0
        received_by_tier = {tier.pk: 0 for tier in rewards}
        for delivery in Delivery.objects.filter(campaign=campaign).select_related("backer"):
            outcome = (
                "never shipped"
                if delivery.tier_id in never_shipped
                else rng.choice(["received", "upheld", "dismissed"])
            )
            if outcome == "never shipped":
                refunded_parts += delivery.part
                continue
            if outcome == "received":
                delivery_confirm(pledge_id=delivery.pledge_id, actor=delivery.backer)
            else:
                report = delivery_report(pledge_id=delivery.pledge_id, actor=delivery.backer, message="missing")
                report_decide(report_id=report.pk, actor=finance, upheld=outcome == "upheld", reason="checked")
            if outcome == "upheld":
                refunded_parts += delivery.part
            else:
                received_by_tier[delivery.tier_id] += delivery.part
        with override_settings(HOLDBACK_REFUND_BATCH_SIZE=batch):
            holdbacks_settle_ready()
        refunds = GatewayOperation.objects.filter(kind=OperationKind.REFUND).aggregate(t=Sum("amount"))["t"] or 0
        assert refunds == refunded_parts
        released = sum(received_by_tier.values())
        assert released + refunds == kept
        assert holdback_balance(campaign) == 0
        fees_after = sum(allocate(r, [FEE_BPS, 10_000 - FEE_BPS])[0] for r in received_by_tier.values() if r)
        at_success = sum(amounts) - kept
        fee_at_success = allocate(at_success, [FEE_BPS, 10_000 - FEE_BPS])[0] if at_success else 0
        assert balance(PLATFORM_REVENUE) == fee_at_success + fees_after
        assert balance(initiator_payout_code(campaign.initiator_id)) + balance(PLATFORM_REVENUE) + refunds == sum(
            amounts
        )
        for delivery in Delivery.objects.filter(campaign=campaign):
            assert delivery.refunded_amount <= delivery.part <= delivery.paid
        assert ledger_verify() == []

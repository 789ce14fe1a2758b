"""Random rounds through the real services keep every matching invariant.

Each Hypothesis example runs in its own transaction (``hypothesis.extra.django.TestCase``): two
to four live campaigns with random goals, random pledges, a pool in a random mode with random
caps, the round ended, published and paid, some pledges cancelled afterwards, then every
campaign closed and settled. The ledger must verify, the pool must hold exactly its deposit
minus what campaigns kept, and no campaign may keep more than it was paid.
"""

from datetime import timedelta

from django.db.models import F, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.tests.factories import StaffFactory, UserFactory
from matching.models import Allocation, PoolMode
from matching.selectors import pool_balance
from matching.services import round_end, round_pay, round_publish
from matching.tests.factories import funded_pool, open_round
from pledges.changes import pledge_change
from pledges.services import pledge_cancel
from pledges.tests.factories import new_key, pledge_held
from projects.models import Campaign
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.tests.checks import escrow_balance, invariant_problems

ROUNDS = st.fixed_dictionaries(
    {
        "goals": st.lists(st.sampled_from([2_000, 5_000, 20_000]), min_size=2, max_size=4),
        "pledges": st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(50, 6_000), st.booleans()), max_size=14
        ),
        "mode": st.sampled_from(list(PoolMode.values)),
        "pool": st.integers(1, 50_000),
        "cap_share": st.sampled_from([None, 0.1, 0.5, 1.0]),
    }
)


class RandomRoundTests(TestCase):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(spec=ROUNDS)
    def test_random_rounds_settle_with_every_cent_accounted(self, spec):
        campaigns = [LiveCampaignFactory(goal=goal, platform_fee_bps=500) for goal in spec["goals"]]
        cap = None if spec["cap_share"] is None else max(1, int(spec["pool"] * spec["cap_share"]))
        caps = {"per_campaign_cap": cap}
        if spec["mode"] == PoolMode.FIXED_RATIO:
            caps.update(per_contribution_cap=cap, per_backer_cap=cap)
        pool = funded_pool(amount=spec["pool"], mode=spec["mode"], campaigns=campaigns, **caps)
        matching_round = open_round(pool)
        backers = [UserFactory(password=None) for _ in range(5)]
        to_cancel = []
        held = {}
        for campaign_index, backer_index, amount, cancel_later in spec["pledges"]:
            campaign = campaigns[campaign_index % len(campaigns)]
            backer = backers[backer_index]
            if (campaign.pk, backer.pk) in held:
                # One pledge per backer per campaign: backing again raises it by the amount.
                pledge = held[campaign.pk, backer.pk]
                pledge = pledge_change(
                    pledge=pledge,
                    actor=backer,
                    amount=pledge.amount + amount,
                    payment_token="tok_visa",
                    idempotency_key=new_key(),
                )
            else:
                pledge = pledge_held(campaign=campaign, backer=backer, amount=amount)
            held[campaign.pk, backer.pk] = pledge
            if cancel_later:
                to_cancel.append(pledge)
        later = matching_round.ends_at + timedelta(seconds=1)
        round_end(matching_round=matching_round, now=later)
        round_publish(matching_round=matching_round, now=later)
        round_pay(matching_round=matching_round, actor=StaffFactory(), now=later + timedelta(days=3))
        assert invariant_problems() == []
        for pledge in to_cancel:
            pledge.refresh_from_db()
            if pledge.status == "held":
                pledge_cancel(pledge=pledge, actor=pledge.backer)
        Campaign.objects.filter(pk__in=[c.pk for c in campaigns]).update(deadline=later - timedelta(days=1))
        for campaign_id in campaigns_close_due(enqueue_settlement=False):
            settlement_run(campaign_id=campaign_id)

        assert invariant_problems() == []
        allocations = Allocation.objects.filter(round__pool=pool)
        paid = allocations.filter(paid_at__isnull=False)
        kept = paid.aggregate(t=Sum(F("amount") - F("returned_amount")))["t"] or 0
        assert pool_balance(pool=pool) == spec["pool"] - kept
        assert (allocations.aggregate(t=Sum("amount"))["t"] or 0) <= spec["pool"]
        assert all(0 <= a.returned_amount <= a.amount for a in paid)
        assert all(a.settled_at is not None for a in allocations)
        assert all(escrow_balance(c) == 0 for c in campaigns)

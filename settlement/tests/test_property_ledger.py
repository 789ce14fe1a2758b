"""Random sequences of what backers, initiators, staff and the clock do keep every money invariant.

Each Hypothesis example runs in its own transaction (``hypothesis.extra.django.TestCase``), starts
from three live campaigns (all-or-nothing in USD, flexible in USD, all-or-nothing in EUR) with a
limited and an unlimited reward tier each, and plays 4 to 15 steps (pledge, replay, cancel, staff
refund, close, settle one batch or all, cancel the campaign, suspend, reinstate), each drawn after
the previous one ran, through the real services and the sandbox gateway. After every step
``ledger_verify()`` and the backer-visible checks must pass, and a refused step must change nothing.
At the end every campaign is closed and settled, and what initiators and the platform got is checked.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.exceptions import ApplicationError, PaymentDeclined
from crowdfund_site.money import allocate
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import PLATFORM_REVENUE, campaign_payable_code, initiator_payout_code
from fulfilment.models import Holdback
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_cancel, pledge_create, pledge_refund
from pledges.tests.factories import new_key
from projects.models import Campaign, CampaignStatus, FundingModel, SettlementOutcome
from projects.services import campaign_reinstate, campaign_suspend
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import campaign_cancel, campaigns_close_due, settlement_run, settlement_run_batch
from settlement.tests.checks import escrow_balance, invariant_problems, money_state

CAMPAIGNS = st.integers(min_value=0, max_value=2)
# Mostly amounts a backer would pledge; now and then zero, negative or far too large.
AMOUNTS = st.sampled_from(["fine"] * 6 + ["bad"]).flatmap(
    lambda kind: st.integers(min_value=1, max_value=6_000) if kind == "fine" else st.sampled_from([0, -100, 10**12])
)
TOKENS = st.sampled_from(["tok_visa", "tok_visa", "tok_mastercard", "tok_chargeDeclined", "tok_insufficientFunds"])
# Backer 3 is the campaign's own initiator; reward None, the limited tier (0) or the unlimited one (1).
PLEDGE_ARGUMENTS = st.tuples(
    st.sampled_from([0, 1, 2, 0, 1, 2, 3]), CAMPAIGNS, st.sampled_from([None, 0, 1]), AMOUNTS, TOKENS
)
# Pledges come most often, as in life; the rest act on a campaign or on a pledge made before.
CAMPAIGN_STEPS = ["close", "settle_one_batch", "settle_one_batch", "settle", "cancel_campaign"]
CAMPAIGN_STEPS += ["suspend", "reinstate"]
PLEDGE_STEPS = ["replay", "cancel", "cancel", "staff_refund"]


@dataclass
class World:
    campaigns: list[Campaign]
    backers: list
    staff: object
    requests: list[dict] = field(default_factory=list)  # requests that created a pledge

    @classmethod
    def create(cls) -> "World":
        campaigns = [
            LiveCampaignFactory(goal=8_000),
            LiveCampaignFactory(goal=50_000, funding_model=FundingModel.FLEXIBLE, platform_fee_bps=750),
            LiveCampaignFactory(goal=5_000, currency="EUR"),
        ]
        for campaign in campaigns:
            RewardTierFactory(campaign=campaign, minimum_amount=1_000, quantity_limit=1)
            RewardTierFactory(campaign=campaign, minimum_amount=200, quantity_limit=None)
        return cls(campaigns=campaigns, backers=[UserFactory() for _ in range(3)], staff=StaffFactory())

    def campaign(self, index: int) -> Campaign:
        return Campaign.objects.get(pk=self.campaigns[index].pk)

    def existing_pledge(self, index: int) -> Pledge:
        request = self.requests[index]
        return Pledge.objects.get(backer=request["backer"], idempotency_key=request["idempotency_key"])

    def draw_step(self, data) -> tuple:
        kinds = ["pledge"] * 6 + CAMPAIGN_STEPS + (PLEDGE_STEPS if self.requests else [])
        kind = data.draw(st.sampled_from(kinds), label="step")
        if kind == "pledge":
            return (kind, *data.draw(PLEDGE_ARGUMENTS, label="backer, campaign, reward, amount, token"))
        if kind in PLEDGE_STEPS:
            return (kind, data.draw(st.integers(0, len(self.requests) - 1), label="pledge"))
        return (kind, data.draw(CAMPAIGNS, label="campaign"))

    def run(self, step: tuple) -> None:
        """Play one step; a refusal must leave everything as it was (a declined card excepted)."""
        action, *args = step
        before = money_state()
        try:
            getattr(self, action)(*args)
        except PaymentDeclined as declined:
            event(f"{action}: {declined.code}")  # the pledge is kept as failed: checked by the invariants
        except ApplicationError as refused:
            event(f"{action}: {refused.code}")
            assert money_state() == before, f"refused {step} changed something"
        else:
            event(f"{action}: done")

    # --- steps ---------------------------------------------------------------------------------

    def pledge(self, backer_index, campaign_index, reward_index, amount, token):
        campaign = self.campaign(campaign_index)
        backer = campaign.initiator if backer_index == 3 else self.backers[backer_index]
        rewards = list(campaign.rewards.order_by("pk"))
        request = {
            "backer": backer,
            "campaign": campaign,
            "amount": amount,
            "currency": campaign.currency,
            "payment_token": token,
            "idempotency_key": new_key(),
            "reward": None if reward_index is None else rewards[reward_index],
        }
        try:
            pledge_create(**request)
        finally:
            if Pledge.objects.filter(backer=backer, idempotency_key=request["idempotency_key"]).exists():
                self.requests.append(request)

    def replay(self, index):
        request = self.requests[index]
        first = Pledge.objects.get(backer=request["backer"], idempotency_key=request["idempotency_key"])
        before = money_state()
        try:
            assert pledge_create(**request).pk == first.pk
        except ApplicationError:
            assert first.status == PledgeStatus.FAILED
        assert money_state() == before, "a replayed request changed something"

    def cancel(self, index):
        pledge = self.existing_pledge(index)
        pledge_cancel(pledge=pledge, actor=pledge.backer)

    def staff_refund(self, index):
        pledge = self.existing_pledge(index)
        pledge_refund(pledge=pledge, actor=self.staff, reason="Requested by the backer")

    def close(self, index):
        Campaign.objects.filter(pk=self.campaigns[index].pk).update(deadline=timezone.now() - timedelta(seconds=1))
        campaigns_close_due(enqueue_settlement=False)

    def settle_one_batch(self, index):
        settlement_run_batch(campaign_id=self.campaigns[index].pk, batch_size=1)

    def settle(self, index):
        settlement_run(campaign_id=self.campaigns[index].pk, batch_size=2)

    def cancel_campaign(self, index):
        campaign = self.campaign(index)
        campaign_cancel(campaign=campaign, actor=campaign.initiator, enqueue_settlement=False)

    def suspend(self, index):
        campaign_suspend(campaign=self.campaign(index), actor=self.staff, reason="Investigating a report")

    def reinstate(self, index):
        campaign_reinstate(campaign=self.campaign(index), actor=self.staff, reason="Report unfounded")

    # --- the end of every campaign ---------------------------------------------------------------

    def finish(self) -> None:
        """Close and settle every campaign that can end, then check what initiators were paid."""
        for index, campaign in enumerate(self.campaigns):
            if self.campaign(index).status == CampaignStatus.SUSPENDED:
                self.reinstate(index)
            Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
        campaigns_close_due(enqueue_settlement=False)
        for campaign in self.campaigns:
            settlement_run(campaign_id=campaign.pk)
        for index in range(len(self.campaigns)):
            campaign = self.campaign(index)
            assert campaign.settled_at is not None, campaign.status
            assert escrow_balance(campaign) == 0
            assert not campaign.pledges.filter(status__in=[PledgeStatus.HELD, PledgeStatus.PENDING]).exists()
            released = campaign.pledges.filter(status=PledgeStatus.RELEASED).aggregate(t=Sum("amount"))["t"] or 0
            if campaign.settlement_outcome == SettlementOutcome.REFUND:
                assert released == 0
                continue
            # Reward pledges' delivery holdback stays in escrow until delivery (fulfilment).
            released -= Holdback.objects.filter(campaign=campaign).values_list("amount", flat=True).first() or 0
            fee, net = allocate(released, [campaign.platform_fee_bps, 10_000 - campaign.platform_fee_bps])
            payouts = GatewayOperation.objects.filter(
                kind=OperationKind.PAYOUT, idempotency_key=f"payout:campaign:{campaign.pk}"
            )
            assert list(payouts.values_list("amount", flat=True)) == [net]
            payout_code = initiator_payout_code(campaign.initiator_id)
            assert account_balances(codes=[payout_code, campaign_payable_code(campaign.pk)]) == {
                (payout_code, campaign.currency): net,
                (campaign_payable_code(campaign.pk), campaign.currency): 0,
            }
        revenue = account_balances(codes=[PLATFORM_REVENUE])
        fees = {}
        for campaign in Campaign.objects.filter(pk__in=[c.pk for c in self.campaigns], status=CampaignStatus.SUCCEEDED):
            released = campaign.pledges.filter(status=PledgeStatus.RELEASED).aggregate(t=Sum("amount"))["t"]
            released -= Holdback.objects.filter(campaign=campaign).values_list("amount", flat=True).first() or 0
            fee = allocate(released, [campaign.platform_fee_bps, 10_000 - campaign.platform_fee_bps])[0]
            fees[(PLATFORM_REVENUE, campaign.currency)] = fees.get((PLATFORM_REVENUE, campaign.currency), 0) + fee
        assert {k: v for k, v in revenue.items() if v} == {k: v for k, v in fees.items() if v}


class RandomSequencesKeepTheLedgerConsistent(TestCase):
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_every_invariant_holds_after_every_step_and_at_the_end(self, data):
        world = World.create()
        for number in range(1, data.draw(st.integers(min_value=4, max_value=15), label="number of steps") + 1):
            step = world.draw_step(data)
            world.run(step)
            problems = invariant_problems()
            assert problems == [], f"after step {number} {step}: {problems}"
        world.finish()
        assert invariant_problems() == []

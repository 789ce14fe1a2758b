"""Random campaigns with milestones and random sequences of releases and endings keep the money whole.

Each Hypothesis example (its own transaction) funds a campaign with 1 to 2,000 pledges of random
amounts and a plan of 1 to 8 milestones, lets it succeed (the first tranche leaves), then plays
releases (proof, approval, sign-off, tranche) and endings (abandonment, or Finance declaring
failure), in any order, through the real services and the sandbox gateway. After every step:
released + refunded + fees = raised; the fee is taken only on released money; no pledge gets back
more than it paid, none twice; staged escrow holds what is neither released nor refunded; and
``ledger_verify()`` finds nothing.
"""

import itertools
import random

from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from crowdfund_site.exceptions import Conflict
from crowdfund_site.money import allocate
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import PLATFORM_REVENUE, initiator_payout_code
from pledges.models import Pledge
from projects.milestones.models import Milestone, MilestoneStatus
from projects.milestones.services import milestone_set_status, milestone_sign_off, milestone_submit_proof
from settlement.models import RemainderCause
from settlement.remainder import remainder_refund_run, remainder_refund_start
from settlement.tests.milestone_helpers import campaign_with_milestones, finance_user, staged_balance, succeed
from settlement.tranches import tranche_release
from settlement.verification import ledger_verify

FEE_BPS = 500


@st.composite
def shares(draw) -> list[int]:
    """Return 1 to 8 shares in basis points summing to 10,000, the first at most 30 %."""
    count = draw(st.integers(min_value=1, max_value=8), label="milestones")
    if count == 1:
        return [10_000]  # a single milestone is all released at success (over the cap: refused)
    first = draw(st.integers(min_value=1, max_value=3_000), label="first share")
    cuts = sorted(
        draw(st.lists(st.integers(1, 10_000 - first - 1), min_size=count - 2, max_size=count - 2, unique=True))
    )
    points = [first, *(first + c for c in cuts), 10_000]
    return [points[0]] + [b - a for a, b in itertools.pairwise(points)]


def balance(code: str) -> int:
    return account_balances(codes=[code]).get((code, "USD"), 0)


class StagedReleaseProperties(TestCase):
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        plan=shares(),
        pledges=st.integers(min_value=1, max_value=2_000),
        seed=st.integers(min_value=0, max_value=2**32),
        steps=st.lists(st.sampled_from(["release", "release", "abandon", "declare"]), max_size=9),
        batch=st.integers(min_value=1, max_value=700),
    )
    def test_releases_and_endings_in_any_order_keep_the_money_whole(self, plan, pledges, seed, steps, batch):
        if len(plan) == 1:
            plan = [3_000, 7_000]
        rng = random.Random(seed)
        amounts = [rng.choice([1, 99, 500, 2_500, rng.randint(1, 1_000_000)]) for _ in range(pledges)]
        campaign = succeed(
            campaign_with_milestones(plan, goal=1, fee_bps=FEE_BPS), pledges=pledges, amount=lambda i: amounts[i]
        )
        raised = sum(amounts)
        finance = finance_user()
        released_gross = [campaign.milestones.get(position=1).amount]
        self.check(campaign, raised, released_gross)
        for step in steps:
            nxt = campaign.milestones.exclude(status=MilestoneStatus.RELEASED).order_by("position").first()
            if step == "release":
                if nxt is None or nxt.status == MilestoneStatus.FAILED:
                    continue
                milestone_submit_proof(milestone=nxt, actor=campaign.initiator, proof_text="proof")
                with transaction.atomic():  # the backers' vote (tested on its own) passes
                    locked = Milestone.objects.select_for_update().get(pk=nxt.pk)
                    milestone_set_status(milestone=locked, to_status=MilestoneStatus.APPROVED, reason="vote passed")
                milestone_sign_off(milestone=nxt, actor=finance)
                released_gross.append(tranche_release(milestone_id=nxt.pk).amount)
            else:
                cause = RemainderCause.ABANDONED if step == "abandon" else RemainderCause.DECLARED_FAILED
                actor = campaign.initiator if step == "abandon" else finance
                try:
                    remainder_refund_start(campaign=campaign, actor=actor, cause=cause, reason="gone", enqueue=False)
                except Conflict:
                    assert campaign.remainder_refund is not None  # only a second ending is refused
                    continue
                remainder_refund_run(campaign_id=campaign.pk, batch_size=batch)
            self.check(campaign, raised, released_gross)

    def check(self, campaign, raised: int, released_gross: list[int]) -> None:
        refunds = GatewayOperation.objects.filter(kind=OperationKind.REFUND).aggregate(t=Sum("amount"))["t"] or 0
        fees = balance(PLATFORM_REVENUE)
        paid_out = balance(initiator_payout_code(campaign.initiator_id))
        assert paid_out + fees + refunds + staged_balance(campaign) == raised
        assert fees == sum(allocate(amount, [FEE_BPS, 10_000 - FEE_BPS])[0] for amount in released_gross if amount)
        assert staged_balance(campaign) == raised - sum(released_gross) - refunds
        over = [
            p
            for p, paid in Pledge.objects.filter(campaign=campaign).values_list("pk", "amount")
            if GatewayOperation.objects.filter(idempotency_key=f"charge:pledge:{p}").values_list(
                "refunded_amount", flat=True
            )[0]
            > paid
        ]
        assert over == []
        assert ledger_verify() == []

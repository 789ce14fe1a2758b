"""A matched pledge refunded before and after its campaign's release: what its match does.

The issue: matched money is "returned to the pool if the campaign fails or a pledge it matched is
cancelled or refunded", and it "settles with" its campaign. So a pledge refunded while the match
is still in the campaign's escrow takes its match back to the pool at settlement; once the
campaign has succeeded, its matched money was released with its funds (fee taken, paid out) and
the allocation is settled for good: a later refund (here an upheld non-delivery report, paid from
the delivery holdback) gives the backer back their own money only, and takes nothing from the
pool's side. Nothing can be clawed back from an initiator already paid, and the sponsor's money
followed the campaign's outcome, success.
"""

import pytest
from django.utils import timezone

from accounts.tests.factories import FinanceFactory
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import PLATFORM_REVENUE, initiator_payout_code
from fulfilment.services import delivery_confirm, delivery_report, report_decide, tier_mark_shipped
from fulfilment.tests.helpers import finance_user, funded_campaign_with_rewards, holdback_balance, succeed
from matching.models import Allocation, AllocationOutcome
from matching.selectors import campaign_matched_by, pool_balance
from matching.tests.factories import funded_pool, open_round
from matching.tests.test_services import balance, pay
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_refund
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory
from settlement.holdback import holdbacks_settle_ready
from settlement.tests.checks import escrow_balance
from settlement.tests.test_settlement import close_and_settle
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


def test_a_pledge_refunded_before_the_release_takes_its_match_back_to_the_pool():
    a = LiveCampaignFactory(goal=5_000, platform_fee_bps=500)
    b = LiveCampaignFactory(goal=100_000)
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    pledges = [pledge_held(campaign=a, amount=2_500) for _ in range(4)]
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    pay(matching_round)
    pledge_refund(pledge=pledges[0], actor=FinanceFactory(), reason="Card reported stolen.")

    a = close_and_settle(a)

    # As for a cancelled pledge: three backers of 25.00 against two of 50.00 earn A 600.00 of
    # the 750.00 it was paid; 150.00 goes back to the pool, and the fee is on what was released.
    allocation = Allocation.objects.get(campaign=a)
    assert (allocation.outcome, allocation.returned_amount) == (AllocationOutcome.RELEASED, 15_000)
    assert pool_balance(pool=pool) == 15_000
    assert balance(PLATFORM_REVENUE) == (7_500 + 60_000) * 5 // 100
    assert escrow_balance(a) == 0
    assert ledger_verify() == []


def test_a_refund_after_the_release_leaves_the_released_match_where_it_went():
    campaign, (tier, _other) = funded_campaign_with_rewards(amounts=[10_000, 20_000, 30_000, 40_000], tiers=2)
    rival = LiveCampaignFactory(goal=1)
    pool = funded_pool(amount=100_000, campaigns=[campaign, rival], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    # The reward pledges were made before the round; these count in it.
    Pledge.objects.filter(campaign=campaign).update(created_at=timezone.now())
    pledge_held(campaign=rival, amount=10_000)
    pledge_held(campaign=rival, amount=10_000)
    pay(matching_round)
    matched = Allocation.objects.get(campaign=campaign).amount
    assert 0 < matched < 100_000

    campaign = succeed(campaign)
    allocation = Allocation.objects.get(campaign=campaign)
    assert (allocation.outcome, allocation.returned_amount) == (AllocationOutcome.RELEASED, 0)
    pool_after_release = pool_balance(pool=pool)
    payout_after_release = balance(initiator_payout_code(campaign.initiator_id))
    # The match was released with the pledges, less the fee, and none of it is held back.
    assert holdback_balance(campaign) == 10_000
    released = 100_000 - 10_000 + matched
    assert payout_after_release == released - released * 5 // 100

    refunded, received = Pledge.objects.filter(campaign=campaign, reward=tier).order_by("id")
    tier_mark_shipped(tier_id=tier.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    delivery_confirm(pledge_id=received.pk, actor=received.backer)
    report = delivery_report(pledge_id=refunded.pk, actor=refunded.backer, message="Never came.")
    report_decide(report_id=report.pk, actor=finance_user(), upheld=True, reason="Carrier lost it.")
    assert holdbacks_settle_ready() == [tier.pk]
    # The received backer's part reaches the initiator (fee taken); the match was never in it.
    assert balance(initiator_payout_code(campaign.initiator_id)) == payout_after_release + 3_000 - 150

    charge = GatewayOperation.objects.get(kind=OperationKind.CHARGE, idempotency_key=f"charge:pledge:{refunded.pk}")
    assert charge.refunded_amount == refunded.amount // 10  # its holdback part, from the holdback
    allocation.refresh_from_db()
    assert (allocation.outcome, allocation.returned_amount) == (AllocationOutcome.RELEASED, 0)
    assert pool_balance(pool=pool) == pool_after_release
    assert [m.amount for m in campaign_matched_by(campaign_id=campaign.pk)] == [matched]
    assert Pledge.objects.get(pk=refunded.pk).status == PledgeStatus.RELEASED
    assert escrow_balance(campaign) == 0
    assert ledger_verify() == []

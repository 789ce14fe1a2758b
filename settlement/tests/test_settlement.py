from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import allocate
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import PLATFORM_REVENUE, campaign_payable_code, initiator_payout_code
from pledges.models import PledgeStatus
from pledges.tests.factories import pledge_held
from projects.models import Campaign, CampaignStatus, FundingModel, SettlementOutcome
from projects.tests.factories import CampaignFactory, LiveCampaignFactory
from settlement.selectors import settlement_find_stuck
from settlement.services import (
    campaign_cancel,
    campaigns_close_due,
    settlement_finalize,
    settlement_run,
    settlement_run_batch,
)
from settlement.tests.checks import escrow_balance, funding_balance, invariant_problems, money_state, net_charged

pytestmark = pytest.mark.django_db


def past_deadline(campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))


def close_and_settle(campaign: Campaign, **kwargs) -> Campaign:
    past_deadline(campaign)
    assert campaign.pk in campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk, **kwargs)
    campaign.refresh_from_db()
    return campaign


def balance(code: str, currency: str = "USD") -> int:
    return account_balances(codes=[code]).get((code, currency), 0)


def statuses(campaign: Campaign) -> list[str]:
    return sorted(campaign.pledges.values_list("status", flat=True))


# --- Closing ----------------------------------------------------------------------------------------


def test_closing_claims_only_live_campaigns_past_their_deadline():
    due = LiveCampaignFactory()
    past_deadline(due)
    LiveCampaignFactory()  # still running
    suspended = LiveCampaignFactory(status=CampaignStatus.SUSPENDED)
    past_deadline(suspended)
    CampaignFactory()  # a draft

    assert campaigns_close_due(enqueue_settlement=False) == [due.pk]
    due.refresh_from_db()
    assert due.status == CampaignStatus.CLOSING
    assert due.status_changes.last().to_status == CampaignStatus.CLOSING
    assert campaigns_close_due(enqueue_settlement=False) == []


def test_the_outcome_is_decided_when_closing_starts():
    reached, missed = LiveCampaignFactory(goal=10_000), LiveCampaignFactory(goal=10_000)
    pledge_held(campaign=reached, amount=10_000)
    pledge_held(campaign=missed, amount=9_999)
    past_deadline(reached)
    past_deadline(missed)
    campaigns_close_due(enqueue_settlement=False)
    reached.refresh_from_db()
    missed.refresh_from_db()
    assert (reached.settlement_outcome, missed.settlement_outcome) == (
        SettlementOutcome.RELEASE,
        SettlementOutcome.REFUND,
    )
    assert "$99.99 of $100.00" in missed.status_changes.last().reason


# --- All or nothing --------------------------------------------------------------------------------


def test_all_or_nothing_that_reached_its_goal_pays_the_initiator_minus_an_exact_fee():
    campaign = LiveCampaignFactory(goal=10_000, platform_fee_bps=500)
    pledges = [pledge_held(campaign=campaign, amount=amount) for amount in (6_000, 4_019)]

    campaign = close_and_settle(campaign)

    assert campaign.status == CampaignStatus.SUCCEEDED
    assert campaign.settled_at is not None
    assert statuses(campaign) == [PledgeStatus.RELEASED] * 2
    # 5 % of $100.19 is $5.0095: the fee is $5.01 and the initiator gets $95.18, together the whole.
    assert balance(PLATFORM_REVENUE) == 501
    assert balance(initiator_payout_code(campaign.initiator_id)) == 9_518
    assert escrow_balance(campaign) == 0
    assert balance(campaign_payable_code(campaign.pk)) == 0
    payout = GatewayOperation.objects.get(kind=OperationKind.PAYOUT)
    assert (payout.amount, payout.destination) == (9_518, initiator_payout_code(campaign.initiator_id))
    for pledge in pledges:
        assert net_charged(pledge) == pledge.amount
        assert funding_balance(pledge.backer) == -pledge.amount
    assert campaign.pledged_amount == 10_019
    assert invariant_problems() == []


@pytest.mark.parametrize(("bps", "released", "fee"), [(500, 10_000, 500), (500, 10_001, 500), (250, 10_020, 251)])
def test_the_fee_uses_the_rate_agreed_at_launch(settings, bps, released, fee):
    campaign = LiveCampaignFactory(goal=released, platform_fee_bps=bps)
    settings.PLATFORM_FEE_BPS = 9_000
    pledge_held(campaign=campaign, amount=released)
    close_and_settle(campaign)
    assert balance(PLATFORM_REVENUE) == fee == allocate(released, [bps, 10_000 - bps])[0]
    assert balance(initiator_payout_code(campaign.initiator_id)) == released - fee


def test_all_or_nothing_that_missed_its_goal_refunds_every_backer():
    campaign = LiveCampaignFactory(goal=100_000)
    pledges = [pledge_held(campaign=campaign, amount=amount) for amount in (5_000, 3_000, 1)]

    campaign = close_and_settle(campaign)

    assert campaign.status == CampaignStatus.FAILED
    assert statuses(campaign) == [PledgeStatus.REFUNDED] * 3
    for pledge in pledges:
        assert net_charged(pledge) == 0
        assert funding_balance(pledge.backer) == 0
    assert escrow_balance(campaign) == 0
    assert not GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).exists()
    assert balance(PLATFORM_REVENUE) == 0
    assert invariant_problems() == []


def test_cancelled_and_failed_pledges_are_left_alone_by_settlement():
    campaign = LiveCampaignFactory(goal=1_000)
    kept = pledge_held(campaign=campaign, amount=1_000)
    cancelled = pledge_held(campaign=campaign, amount=700)
    from pledges.services import pledge_cancel

    pledge_cancel(pledge=cancelled, actor=cancelled.backer)
    campaign = close_and_settle(campaign)
    cancelled.refresh_from_db()
    kept.refresh_from_db()
    assert (kept.status, cancelled.status) == (PledgeStatus.RELEASED, PledgeStatus.CANCELLED)
    assert balance(initiator_payout_code(campaign.initiator_id)) == 950
    assert invariant_problems() == []


# --- Flexible ---------------------------------------------------------------------------------------


def test_flexible_releases_whatever_was_raised():
    campaign = LiveCampaignFactory(goal=100_000, funding_model=FundingModel.FLEXIBLE)
    pledge_held(campaign=campaign, amount=5_000)
    pledge_held(campaign=campaign, amount=3_000)

    campaign = close_and_settle(campaign)

    assert campaign.status == CampaignStatus.SUCCEEDED
    assert statuses(campaign) == [PledgeStatus.RELEASED] * 2
    assert balance(PLATFORM_REVENUE) == 400
    assert balance(initiator_payout_code(campaign.initiator_id)) == 7_600
    assert invariant_problems() == []


def test_flexible_with_nothing_raised_pays_nothing():
    campaign = close_and_settle(LiveCampaignFactory(funding_model=FundingModel.FLEXIBLE))
    assert campaign.status == CampaignStatus.FAILED
    assert not GatewayOperation.objects.exists()
    assert invariant_problems() == []


# --- Cancelling -------------------------------------------------------------------------------------


def test_a_cancelled_campaign_refunds_every_held_pledge():
    campaign = LiveCampaignFactory(goal=1_000)
    pledges = [pledge_held(campaign=campaign, amount=amount) for amount in (600, 700)]

    campaign_cancel(campaign=campaign, actor=campaign.initiator, enqueue_settlement=False)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.settlement_outcome, campaign.settled_at) == (
        CampaignStatus.CANCELLED,
        SettlementOutcome.REFUND,
        None,
    )
    last = campaign.status_changes.last()
    assert (last.actor, last.reason) == (campaign.initiator, "cancelled by initiator")

    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert campaign.settled_at is not None
    assert statuses(campaign) == [PledgeStatus.REFUNDED] * 2
    assert all(net_charged(p) == 0 for p in pledges)
    assert escrow_balance(campaign) == 0
    assert invariant_problems() == []


def test_a_campaign_without_pledges_is_settled_as_soon_as_it_is_cancelled():
    draft = CampaignFactory()
    campaign_cancel(campaign=draft, actor=draft.initiator)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.CANCELLED
    assert draft.settled_at is not None


def test_staff_cancel_with_a_reason(staff, live_campaign):
    before = money_state()
    with pytest.raises(InvalidInput):
        campaign_cancel(campaign=live_campaign, actor=staff, reason="  ")
    assert money_state() == before
    campaign_cancel(campaign=live_campaign, actor=staff, reason="Fraud", enqueue_settlement=False)
    live_campaign.refresh_from_db()
    assert live_campaign.status == CampaignStatus.CANCELLED
    assert (live_campaign.status_changes.last().actor, live_campaign.status_changes.last().reason) == (staff, "Fraud")


@pytest.mark.parametrize("who", ["stranger", "backer", "nobody"])
def test_only_the_initiator_or_staff_cancel(live_campaign, who):
    backer = pledge_held(campaign=live_campaign).backer
    actor = {"stranger": UserFactory, "backer": lambda: backer, "nobody": lambda: None}[who]()
    before = money_state()
    with pytest.raises(NotAllowed):
        campaign_cancel(campaign=live_campaign, actor=actor, reason="I want my money")
    assert money_state() == before


@pytest.mark.parametrize("status", [CampaignStatus.CLOSING, CampaignStatus.SUCCEEDED, CampaignStatus.CANCELLED])
def test_campaigns_that_ended_cannot_be_cancelled(status):
    campaign = LiveCampaignFactory(status=status)
    before = money_state()
    with pytest.raises(Conflict):
        campaign_cancel(campaign=campaign, actor=campaign.initiator)
    assert money_state() == before


# --- Restarts and batches ------------------------------------------------------------------------------


@pytest.mark.parametrize("goal", [1_000, 1_000_000], ids=["release", "refund"])
def test_running_settlement_again_changes_nothing(goal):
    campaign = LiveCampaignFactory(goal=goal)
    for _ in range(3):
        pledge_held(campaign=campaign, amount=1_000)
    close_and_settle(campaign)
    before = money_state()
    settlement_run(campaign_id=campaign.pk)
    assert settlement_run_batch(campaign_id=campaign.pk) is False
    settlement_finalize(campaign_id=campaign.pk)
    assert money_state() == before
    assert invariant_problems() == []


@pytest.mark.parametrize("goal", [1_000, 1_000_000], ids=["release", "refund"])
def test_settlement_goes_batch_by_batch_and_every_batch_leaves_the_ledger_consistent(goal):
    campaign = LiveCampaignFactory(goal=goal)
    for amount in (1_000, 2_000, 3_000, 4_000, 5_000):
        pledge_held(campaign=campaign, amount=amount)
    past_deadline(campaign)
    campaigns_close_due(enqueue_settlement=False)

    held_after_each_batch = []
    while settlement_run_batch(campaign_id=campaign.pk, batch_size=2):
        held_after_each_batch.append(campaign.pledges.filter(status=PledgeStatus.HELD).count())
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.CLOSING
        assert escrow_balance(campaign) == sum(
            campaign.pledges.filter(status=PledgeStatus.HELD).values_list("amount", flat=True)
        )
        assert invariant_problems() == []
    assert held_after_each_batch == [3, 1]
    campaign.refresh_from_db()
    assert campaign.status in (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED)
    assert not campaign.pledges.filter(status=PledgeStatus.HELD).exists()
    assert invariant_problems() == []


def test_an_exact_multiple_of_the_batch_size_still_finishes():
    campaign = LiveCampaignFactory(goal=1_000)
    for _ in range(4):
        pledge_held(campaign=campaign, amount=500)
    campaign = close_and_settle(campaign, batch_size=2)
    assert campaign.status == CampaignStatus.SUCCEEDED
    assert balance(initiator_payout_code(campaign.initiator_id)) == 1_900


def test_settling_a_live_campaign_does_nothing(live_campaign):
    pledge_held(campaign=live_campaign)
    before = money_state()
    assert settlement_run_batch(campaign_id=live_campaign.pk) is False
    settlement_run(campaign_id=live_campaign.pk)
    assert money_state() == before


# --- Stuck settlements ------------------------------------------------------------------------------


def test_a_settlement_without_progress_for_too_long_is_found(settings):
    settings.SETTLEMENT_STUCK_AFTER = timedelta(minutes=5)
    stuck, busy = LiveCampaignFactory(goal=1_000), LiveCampaignFactory(goal=1_000)
    for campaign in (stuck, busy):
        pledge_held(campaign=campaign, amount=1_000)
        past_deadline(campaign)
    campaigns_close_due(enqueue_settlement=False)
    now = timezone.now()
    Campaign.objects.filter(pk=stuck.pk).update(last_settlement_progress_at=now - timedelta(minutes=6))
    Campaign.objects.filter(pk=busy.pk).update(last_settlement_progress_at=now - timedelta(minutes=4))

    assert settlement_find_stuck(now=now) == [stuck.pk]
    settlement_run(campaign_id=stuck.pk)
    assert settlement_find_stuck(now=now + timedelta(hours=1)) == [busy.pk]


# --- The management command -------------------------------------------------------------------------


def test_close_due_campaigns_command_closes_and_settles_without_a_broker(capsys):
    campaign = LiveCampaignFactory(goal=1_000)
    pledge_held(campaign=campaign, amount=1_000)
    LiveCampaignFactory()
    past_deadline(campaign)

    call_command("close_due_campaigns")

    out = capsys.readouterr().out
    assert f"Settled campaign {campaign.pk}" in out
    assert "Closed 1 campaign(s)." in out
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    assert invariant_problems() == []


def test_close_due_campaigns_command_finishes_a_settlement_a_crashed_worker_left(capsys, settings):
    settings.SETTLEMENT_STUCK_AFTER = timedelta(minutes=5)
    campaign = LiveCampaignFactory(goal=1_000_000)
    pledge_held(campaign=campaign, amount=1_000)
    past_deadline(campaign)
    campaigns_close_due(enqueue_settlement=False)
    Campaign.objects.filter(pk=campaign.pk).update(last_settlement_progress_at=timezone.now() - timedelta(hours=1))

    call_command("close_due_campaigns")

    assert "Closed 0 campaign(s)." in capsys.readouterr().out
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    assert invariant_problems() == []

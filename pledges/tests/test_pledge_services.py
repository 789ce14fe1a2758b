from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, NotFound, PaymentDeclined
from crowdfund_site.money import parse_amount
from escrow.gateway import get_gateway
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind, OperationStatus, TransactionKind
from escrow.vocabulary import backer_funding_code, campaign_escrow_code
from pledges.models import Pledge, PledgeStatus, PledgeStatusChange
from pledges.services import (
    charge_key,
    pledge_cancel,
    pledge_create,
    pledge_reconcile_pending,
    pledge_refund,
    refund_key,
)
from pledges.tests.factories import VISA, pledge_held, pledge_left_pending
from projects.models import Campaign, CampaignStatus
from projects.services import campaign_suspend
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory
from settlement.services import campaign_cancel, campaigns_close_due, pledges_reconcile
from settlement.tests.checks import (
    charge_of,
    escrow_balance,
    funding_balance,
    invariant_problems,
    money_state,
    net_charged,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def tier(live_campaign):
    """A $25.00 reward tier limited to one backer."""
    return RewardTierFactory(campaign=live_campaign, minimum_amount=2_500, quantity_limit=1)


def pledge(*, backer, campaign, amount=5_000, currency="USD", token=VISA, key="key-1", reward=None):
    return pledge_create(
        backer=backer,
        campaign=campaign,
        amount=amount,
        currency=currency,
        payment_token=token,
        idempotency_key=key,
        reward=reward,
    )


def refresh(*objects):
    for obj in objects:
        obj.refresh_from_db()


# --- Pledging ----------------------------------------------------------------------------------


def test_pledge_charges_the_card_and_holds_the_money_in_escrow(backer, live_campaign, tier):
    held = pledge(backer=backer, campaign=live_campaign, amount=parse_amount("30.00", "USD"), reward=tier)

    assert held.status == PledgeStatus.HELD
    assert held.held_at is not None
    assert (held.amount, held.currency, held.reward) == (3_000, "USD", tier)
    charge = charge_of(held)
    assert (charge.status, charge.amount, charge.currency) == (OperationStatus.SUCCEEDED, 3_000, "USD")
    assert held.payment_reference == charge.reference
    assert account_balances(codes=[campaign_escrow_code(live_campaign.pk), backer_funding_code(backer.pk)]) == {
        (campaign_escrow_code(live_campaign.pk), "USD"): 3_000,
        (backer_funding_code(backer.pk), "USD"): -3_000,
    }
    hold = LedgerTransaction.objects.get(reference=f"pledge:{held.pk}")
    assert hold.kind == TransactionKind.HOLD
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, live_campaign.backer_count) == (3_000, 1)
    assert tier.claimed_count == 1
    assert list(held.status_changes.values_list("from_status", "to_status", "actor")) == [
        (PledgeStatus.PENDING, PledgeStatus.HELD, backer.pk)
    ]
    assert invariant_problems() == []


def _flag_as_legacy(backer, campaign) -> None:
    """Make the backer's open pledge look like data from before one open pledge per backer per campaign."""
    Pledge.objects.filter(backer=backer, campaign=campaign).update(legacy_duplicate=True)


def test_a_backer_is_counted_once_however_many_pledges_they_make(backer, live_campaign):
    pledge(backer=backer, campaign=live_campaign, amount=1_000, key="a")
    _flag_as_legacy(backer, live_campaign)
    pledge(backer=backer, campaign=live_campaign, amount=2_000, key="b")
    pledge(backer=UserFactory(), campaign=live_campaign, amount=4_000, key="a")
    refresh(live_campaign)
    assert (live_campaign.pledged_amount, live_campaign.backer_count) == (7_000, 2)
    assert invariant_problems() == []


def test_japanese_yen_pledges_have_no_minor_unit(backer):
    campaign = LiveCampaignFactory(currency="JPY", goal=100_000)
    held = pledge(backer=backer, campaign=campaign, amount=parse_amount("¥5,000", "JPY"), currency="JPY")
    assert held.amount == 5_000
    assert escrow_balance(campaign) == 5_000


# --- Bad input: each refused with a code, nothing charged, nothing recorded -----------------------


@pytest.mark.parametrize(
    ("request_fields", "code"),
    [
        ({"amount": 0}, "amount_not_positive"),
        ({"amount": -500}, "amount_not_positive"),
        ({"amount": 12.5}, "invalid_amount"),
        ({"amount": Decimal("12.50")}, "invalid_amount"),
        ({"currency": "EUR"}, "wrong_currency"),
        ({"currency": "XXX"}, "invalid_currency"),
        ({"amount": 100_001}, "amount_too_large"),
        ({"token": ""}, "payment_token_required"),
        ({"token": "   "}, "payment_token_required"),
        ({"key": ""}, "idempotency_key_required"),
        ({"key": "k" * 256}, "idempotency_key_required"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(backer, live_campaign, settings, request_fields, code):
    settings.PLEDGE_MAX_MINOR = 100_000
    before = money_state()
    with pytest.raises(InvalidInput) as refused:
        pledge(backer=backer, campaign=live_campaign, **request_fields)
    assert refused.value.code == code
    assert refused.value.message
    assert money_state() == before


def test_the_largest_pledge_allowed_goes_through(backer, live_campaign, settings):
    settings.PLEDGE_MAX_MINOR = 100_000
    assert pledge(backer=backer, campaign=live_campaign, amount=100_000).status == PledgeStatus.HELD


@pytest.mark.parametrize("typed", ["12.345", "0", "-10", "ten dollars"])
def test_amounts_typed_by_a_backer_are_refused_before_anything_is_charged(backer, live_campaign, typed):
    before = money_state()
    with pytest.raises(InvalidInput):
        pledge(backer=backer, campaign=live_campaign, amount=parse_amount(typed, live_campaign.currency))
    assert money_state() == before


def test_pledge_below_the_reward_minimum_is_refused(backer, live_campaign, tier):
    before = money_state()
    with pytest.raises(InvalidInput) as refused:
        pledge(backer=backer, campaign=live_campaign, amount=2_499, reward=tier)
    assert refused.value.code == "below_reward_minimum"
    assert "$25.00" in refused.value.message
    assert money_state() == before


def test_reward_of_another_campaign_is_refused(backer, live_campaign):
    elsewhere = RewardTierFactory(campaign=LiveCampaignFactory(), minimum_amount=100)
    before = money_state()
    with pytest.raises(InvalidInput) as refused:
        pledge(backer=backer, campaign=live_campaign, amount=5_000, reward=elsewhere)
    assert refused.value.code == "invalid_reward"
    assert money_state() == before


# --- Campaign state ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        CampaignStatus.DRAFT,
        CampaignStatus.IN_REVIEW,
        CampaignStatus.APPROVED,
        CampaignStatus.SUSPENDED,
        CampaignStatus.CLOSING,
        CampaignStatus.SUCCEEDED,
        CampaignStatus.FAILED,
        CampaignStatus.CANCELLED,
    ],
)
def test_only_live_campaigns_take_pledges(backer, status):
    factory = CampaignFactory if status in (CampaignStatus.DRAFT, CampaignStatus.IN_REVIEW) else LiveCampaignFactory
    campaign = factory(status=status)
    before = money_state()
    with pytest.raises(Conflict) as refused:
        pledge(backer=backer, campaign=campaign)
    assert refused.value.code == "campaign_not_live"
    assert money_state() == before


def test_a_live_campaign_past_its_deadline_takes_no_pledges(backer, live_campaign):
    type(live_campaign).objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    live_campaign.refresh_from_db()  # as the page or API request loads it
    before = money_state()
    with pytest.raises(Conflict) as refused:
        pledge(backer=backer, campaign=live_campaign)
    assert refused.value.code == "campaign_not_live"
    assert money_state() == before


def test_a_suspended_campaign_takes_no_pledges(backer, live_campaign, staff):
    suspended = campaign_suspend(campaign=live_campaign, actor=staff, reason="Investigating")
    with pytest.raises(Conflict):
        pledge(backer=backer, campaign=suspended)
    assert not Pledge.objects.exists()


def test_a_campaign_that_stops_after_the_request_was_checked_gets_no_pledge_and_the_charge_is_refunded(
    backer, live_campaign, tier, staff
):
    """The campaign as the request loaded it was live; it was suspended before the hold."""
    campaign_suspend(campaign=live_campaign, actor=staff, reason="Investigating")
    assert live_campaign.status == CampaignStatus.LIVE  # the request's copy

    with pytest.raises(Conflict) as refused:
        pledge(backer=backer, campaign=live_campaign, reward=tier, key="late")
    assert refused.value.code == "campaign_not_live"
    failed = Pledge.objects.get(backer=backer, idempotency_key="late")
    assert (failed.status, failed.failure_code) == (PledgeStatus.FAILED, "campaign_not_live")
    assert net_charged(failed) == 0
    assert not LedgerTransaction.objects.exists()
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, live_campaign.backer_count, tier.claimed_count) == (0, 0, 0)
    assert invariant_problems() == []


def test_a_campaign_whose_deadline_passes_after_the_request_was_checked_gets_no_pledge(backer, live_campaign, tier):
    """The deadline passed between the request's check and the hold; the close task has not run yet."""
    Campaign.objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert live_campaign.is_open_for_pledges  # the request's copy

    with pytest.raises(Conflict) as refused:
        pledge(backer=backer, campaign=live_campaign, reward=tier, key="after-deadline")
    assert refused.value.code == "campaign_not_live"
    failed = Pledge.objects.get(backer=backer, idempotency_key="after-deadline")
    assert failed.status == PledgeStatus.FAILED
    assert net_charged(failed) == 0
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, live_campaign.backer_count, tier.claimed_count) == (0, 0, 0)
    assert invariant_problems() == []


def test_initiators_cannot_back_their_own_campaign(live_campaign):
    before = money_state()
    with pytest.raises(NotAllowed) as refused:
        pledge(backer=live_campaign.initiator, campaign=live_campaign)
    assert refused.value.code == "own_campaign"
    assert money_state() == before


def test_a_sold_out_tier_refuses_the_next_backer_until_a_slot_frees(live_campaign, tier):
    first = pledge(backer=UserFactory(), campaign=live_campaign, reward=tier)
    late = UserFactory()
    before = money_state()
    with pytest.raises(Conflict) as refused:
        pledge(backer=late, campaign=live_campaign, reward=tier)
    assert refused.value.code == "sold_out"
    assert money_state() == before

    pledge_cancel(pledge=first, actor=first.backer)
    # The same request, retried, now gets the freed slot.
    assert pledge(backer=late, campaign=live_campaign, reward=tier).status == PledgeStatus.HELD
    refresh(tier)
    assert tier.claimed_count == 1
    assert invariant_problems() == []


def test_unlimited_tiers_never_sell_out(live_campaign):
    unlimited = RewardTierFactory(campaign=live_campaign, minimum_amount=100, quantity_limit=None)
    for _ in range(5):
        pledge_held(campaign=live_campaign, reward=unlimited)
    refresh(unlimited)
    assert unlimited.claimed_count == 5


# --- Idempotency ------------------------------------------------------------------------------------


def test_a_replayed_request_returns_the_same_pledge_without_charging_again(backer, live_campaign, tier):
    first = pledge(backer=backer, campaign=live_campaign, reward=tier, key="retry-me")
    before = money_state()
    again = pledge(backer=backer, campaign=live_campaign, reward=tier, key="retry-me")
    assert again.pk == first.pk
    assert again.status == PledgeStatus.HELD
    assert money_state() == before
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1


def test_a_retry_after_the_campaign_closed_returns_the_held_pledge(backer, live_campaign, tier):
    first = pledge(backer=backer, campaign=live_campaign, reward=tier, key="retry-late")
    type(live_campaign).objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    campaigns_close_due(enqueue_settlement=False)
    live_campaign.refresh_from_db()
    assert live_campaign.status == CampaignStatus.CLOSING

    before = money_state()
    again = pledge(backer=backer, campaign=live_campaign, reward=tier, key="retry-late")
    assert (again.pk, again.status) == (first.pk, PledgeStatus.HELD)
    assert money_state() == before
    # The same key for a different request is still refused as such, not as "not live".
    with pytest.raises(Conflict) as refused:
        pledge(backer=backer, campaign=live_campaign, amount=6_000, reward=tier, key="retry-late")
    assert refused.value.code == "idempotency_key_reused"


def test_a_retry_of_a_declined_pledge_after_the_campaign_closed_is_declined_again(backer, live_campaign):
    with pytest.raises(PaymentDeclined):
        pledge(backer=backer, campaign=live_campaign, token="tok_chargeDeclined", key="declined-late")
    type(live_campaign).objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    campaigns_close_due(enqueue_settlement=False)
    live_campaign.refresh_from_db()

    before = money_state()
    with pytest.raises(PaymentDeclined) as again:
        pledge(backer=backer, campaign=live_campaign, token="tok_chargeDeclined", key="declined-late")
    assert again.value.code == "card_declined"
    assert money_state() == before


def test_a_retry_after_the_reward_sold_out_returns_the_held_pledge(live_campaign, tier):
    backer = UserFactory()
    first = pledge(backer=backer, campaign=live_campaign, reward=tier, key="last-slot")
    refresh(tier)
    assert tier.sold_out
    before = money_state()
    again = pledge(backer=backer, campaign=live_campaign, reward=tier, key="last-slot")
    assert (again.pk, again.status) == (first.pk, PledgeStatus.HELD)
    assert money_state() == before
    refresh(tier)
    assert tier.claimed_count == 1


@pytest.mark.parametrize(
    "changed", [{"amount": 6_000}, {"token": "tok_mastercard"}, {"reward": "tier"}, {"campaign": "other"}]
)
def test_the_same_key_with_a_different_request_is_refused(backer, live_campaign, tier, changed):
    pledge(backer=backer, campaign=live_campaign, key="once")
    changed = dict(changed)
    if changed.get("reward") == "tier":
        changed["reward"] = tier
    if changed.get("campaign") == "other":
        changed["campaign"] = LiveCampaignFactory()
    before = money_state()
    with pytest.raises(Conflict) as refused:
        pledge(**{"backer": backer, "campaign": live_campaign, "key": "once", **changed})
    assert refused.value.code == "idempotency_key_reused"
    assert money_state() == before


def test_keys_belong_to_one_backer(live_campaign):
    mine = pledge(backer=UserFactory(), campaign=live_campaign, key="shared")
    yours = pledge(backer=UserFactory(), campaign=live_campaign, key="shared")
    assert mine.pk != yours.pk
    refresh(live_campaign)
    assert live_campaign.pledged_amount == 10_000


# --- Declined and flaky cards -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
        ("tok_made_up", "invalid_token"),
    ],
)
def test_a_declined_card_fails_the_pledge_and_frees_the_reward(backer, live_campaign, tier, token, code):
    with pytest.raises(PaymentDeclined) as declined:
        pledge(backer=backer, campaign=live_campaign, token=token, reward=tier, key="declined")
    assert declined.value.code == code
    assert declined.value.message

    failed = Pledge.objects.get(backer=backer, idempotency_key="declined")
    assert (failed.status, failed.failure_code, failed.payment_reference) == (PledgeStatus.FAILED, code, "")
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, live_campaign.backer_count, tier.claimed_count) == (0, 0, 0)
    assert not LedgerTransaction.objects.exists()
    assert invariant_problems() == []

    # Retrying the same request answers with the same decline and does not go to the card again.
    before = money_state()
    with pytest.raises(PaymentDeclined) as again:
        pledge(backer=backer, campaign=live_campaign, token=token, reward=tier, key="declined")
    assert again.value.code == code
    assert money_state() == before

    # With another card (a new request) the backer gets the reward.
    assert pledge(backer=backer, campaign=live_campaign, reward=tier, key="new-card").status == PledgeStatus.HELD


def test_a_transient_processing_error_is_retried_with_the_same_key(backer, live_campaign):
    held = pledge(backer=backer, campaign=live_campaign, token="tok_processingError")
    assert held.status == PledgeStatus.HELD
    charges = GatewayOperation.objects.filter(kind=OperationKind.CHARGE)
    assert charges.count() == 1
    assert (charges.get().status, charges.get().attempts) == (OperationStatus.SUCCEEDED, 2)
    assert escrow_balance(live_campaign) == 5_000


# --- Cancelling -------------------------------------------------------------------------------------


def test_backer_cancels_and_gets_everything_back(backer, live_campaign, tier):
    held = pledge(backer=backer, campaign=live_campaign, reward=tier)
    cancelled = pledge_cancel(pledge=held, actor=backer)

    assert cancelled.status == PledgeStatus.CANCELLED
    assert cancelled.closed_at is not None
    charge = charge_of(held)
    assert charge.refunded_amount == 5_000
    refund = GatewayOperation.objects.get(idempotency_key=refund_key(held.pk))
    assert (refund.kind, refund.status, refund.amount, refund.charge) == (
        OperationKind.REFUND,
        OperationStatus.SUCCEEDED,
        5_000,
        charge,
    )
    assert escrow_balance(live_campaign) == 0
    assert funding_balance(backer) == 0
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, live_campaign.backer_count, tier.claimed_count) == (0, 0, 0)
    assert invariant_problems() == []


def test_cancelling_one_of_two_pledges_keeps_the_backer_counted(backer, live_campaign):
    first = pledge(backer=backer, campaign=live_campaign, amount=1_000, key="a")
    _flag_as_legacy(backer, live_campaign)
    pledge(backer=backer, campaign=live_campaign, amount=2_000, key="b")
    pledge_cancel(pledge=first, actor=backer)
    refresh(live_campaign)
    assert (live_campaign.pledged_amount, live_campaign.backer_count) == (2_000, 1)


@pytest.mark.parametrize("who", ["stranger", "initiator", "staff", "nobody"])
def test_only_the_backer_can_cancel_and_others_do_not_learn_it_exists(backer, live_campaign, who):
    held = pledge(backer=backer, campaign=live_campaign)
    actor = {
        "stranger": UserFactory,
        "initiator": lambda: live_campaign.initiator,
        "staff": StaffFactory,
        "nobody": lambda: None,
    }[who]()
    before = money_state()
    with pytest.raises(NotFound):
        pledge_cancel(pledge=held, actor=actor)
    assert money_state() == before


def test_cancelling_twice_is_refused(backer, live_campaign):
    held = pledge(backer=backer, campaign=live_campaign)
    pledge_cancel(pledge=held, actor=backer)
    before = money_state()
    with pytest.raises(Conflict) as refused:
        pledge_cancel(pledge=held, actor=backer)
    assert refused.value.code == "not_held"
    assert money_state() == before
    assert charge_of(held).refunded_amount == 5_000


def test_a_failed_pledge_cannot_be_cancelled(backer, live_campaign):
    with pytest.raises(PaymentDeclined):
        pledge(backer=backer, campaign=live_campaign, token="tok_chargeDeclined")
    failed = Pledge.objects.get()
    before = money_state()
    with pytest.raises(Conflict):
        pledge_cancel(pledge=failed, actor=backer)
    assert money_state() == before


def test_no_cancelling_after_the_deadline(backer, live_campaign):
    held = pledge(backer=backer, campaign=live_campaign)
    type(live_campaign).objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    before = money_state()
    with pytest.raises(Conflict) as refused:
        pledge_cancel(pledge=held, actor=backer)
    assert refused.value.code == "campaign_closed"
    assert money_state() == before


def test_no_cancelling_once_the_campaign_is_closing(backer, live_campaign):
    held = pledge(backer=backer, campaign=live_campaign)
    type(live_campaign).objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    campaigns_close_due(enqueue_settlement=False)
    before = money_state()
    with pytest.raises(Conflict):
        pledge_cancel(pledge=held, actor=backer)
    assert money_state() == before


# --- Staff refunds ------------------------------------------------------------------------------------


def test_staff_refund_a_held_pledge_with_a_reason(backer, live_campaign, staff, tier):
    held = pledge(backer=backer, campaign=live_campaign, reward=tier)
    refunded = pledge_refund(pledge=held, actor=staff, reason="  Duplicate payment  ")
    assert refunded.status == PledgeStatus.REFUNDED
    assert charge_of(held).refunded_amount == 5_000
    assert funding_balance(backer) == 0
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, live_campaign.backer_count, tier.claimed_count) == (0, 0, 0)
    last = PledgeStatusChange.objects.filter(pledge=held).last()
    assert (last.to_status, last.actor, last.reason) == (PledgeStatus.REFUNDED, staff, "Duplicate payment")
    assert invariant_problems() == []


def test_staff_refund_works_while_a_campaign_is_suspended(backer, live_campaign, staff):
    held = pledge(backer=backer, campaign=live_campaign)
    campaign_suspend(campaign=live_campaign, actor=staff, reason="Fraud report")
    pledge_refund(pledge=held, actor=staff, reason="Fraud report")
    assert net_charged(held) == 0
    assert invariant_problems() == []


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_staff_refund_needs_a_reason(backer, live_campaign, staff, reason):
    held = pledge(backer=backer, campaign=live_campaign)
    before = money_state()
    with pytest.raises(InvalidInput) as refused:
        pledge_refund(pledge=held, actor=staff, reason=reason)
    assert refused.value.code == "reason_required"
    assert money_state() == before


@pytest.mark.parametrize("who", ["backer", "initiator", "stranger", "nobody"])
def test_only_staff_refund(backer, live_campaign, who):
    held = pledge(backer=backer, campaign=live_campaign)
    actor = {
        "backer": lambda: backer,
        "initiator": lambda: live_campaign.initiator,
        "stranger": UserFactory,
        "nobody": lambda: None,
    }[who]()
    before = money_state()
    with pytest.raises(NotAllowed):
        pledge_refund(pledge=held, actor=actor, reason="please")
    assert money_state() == before


def test_staff_cannot_refund_twice_or_after_the_campaign_closed(backer, live_campaign, staff):
    refunded = pledge(backer=backer, campaign=live_campaign, key="a")
    pledge_refund(pledge=refunded, actor=staff, reason="Asked by backer")
    closed = pledge(backer=backer, campaign=live_campaign, key="b")
    type(live_campaign).objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    campaigns_close_due(enqueue_settlement=False)
    before = money_state()
    with pytest.raises(Conflict):
        pledge_refund(pledge=refunded, actor=staff, reason="Again")
    with pytest.raises(Conflict) as refused:
        pledge_refund(pledge=closed, actor=staff, reason="Too late")
    assert refused.value.code == "campaign_closed"
    assert money_state() == before


# --- Pledges a crash left pending ----------------------------------------------------------------------


def test_reconciling_a_pending_pledge_whose_charge_went_through_holds_it(live_campaign, tier):
    stale = pledge_left_pending(campaign=live_campaign, reward=tier, amount=4_000)
    get_gateway().charge(idempotency_key=charge_key(stale.pk), amount=4_000, currency="USD", token="tok_visa")

    reconciled = pledge_reconcile_pending(pledge=stale)
    assert reconciled.status == PledgeStatus.HELD
    assert reconciled.payment_reference == charge_of(stale).reference
    assert escrow_balance(live_campaign) == 4_000
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, live_campaign.backer_count, tier.claimed_count) == (4_000, 1, 1)
    assert invariant_problems() == []

    before = money_state()
    pledge_reconcile_pending(pledge=stale)
    assert money_state() == before


def test_reconciling_a_pending_pledge_that_was_never_charged_fails_it(live_campaign, tier):
    stale = pledge_left_pending(campaign=live_campaign, reward=tier)
    reconciled = pledge_reconcile_pending(pledge=stale)
    assert (reconciled.status, reconciled.failure_code) == (PledgeStatus.FAILED, "abandoned")
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, tier.claimed_count) == (0, 0)
    assert not LedgerTransaction.objects.exists()
    assert invariant_problems() == []


def retry(stale, **fields):
    """Send again the request that left ``stale`` pending."""
    return pledge_create(
        backer=stale.backer,
        campaign=stale.campaign,
        amount=stale.amount,
        currency=stale.currency,
        payment_token="tok_visa",
        idempotency_key=stale.idempotency_key,
        reward=stale.reward,
        **fields,
    )


def test_retrying_a_request_that_died_before_the_charge_completes_it(live_campaign, tier):
    stale = pledge_left_pending(campaign=live_campaign, reward=tier)
    held = retry(stale)
    assert held.pk == stale.pk
    assert held.status == PledgeStatus.HELD
    refresh(live_campaign, tier)
    assert (live_campaign.pledged_amount, tier.claimed_count) == (5_000, 1)
    assert invariant_problems() == []


def test_a_charge_arriving_after_the_campaign_closed_is_refunded(live_campaign, tier):
    stale = pledge_left_pending(campaign=live_campaign, reward=tier, amount=4_000)
    get_gateway().charge(idempotency_key=charge_key(stale.pk), amount=4_000, currency="USD", token="tok_visa")
    campaign_cancel(campaign=live_campaign, actor=live_campaign.initiator, enqueue_settlement=False)

    with pytest.raises(Conflict) as refused:
        retry(stale)
    assert refused.value.code == "campaign_not_live"
    stale.refresh_from_db()
    assert (stale.status, stale.failure_code) == (PledgeStatus.FAILED, "campaign_not_live")
    assert stale.payment_reference == charge_of(stale).reference
    assert net_charged(stale) == 0
    assert not LedgerTransaction.objects.exists()
    refresh(live_campaign, tier)
    assert (live_campaign.status, live_campaign.pledged_amount, tier.claimed_count) == (CampaignStatus.CANCELLED, 0, 0)
    assert invariant_problems() == []


def test_reconciling_a_charge_that_arrived_after_the_campaign_closed_refunds_it(live_campaign):
    stale = pledge_left_pending(campaign=live_campaign, amount=4_000)
    get_gateway().charge(idempotency_key=charge_key(stale.pk), amount=4_000, currency="USD", token="tok_visa")
    type(live_campaign).objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    campaigns_close_due(enqueue_settlement=False)

    reconciled = pledge_reconcile_pending(pledge=stale)
    assert (reconciled.status, reconciled.failure_code) == (PledgeStatus.FAILED, "campaign_not_live")
    assert net_charged(stale) == 0
    assert invariant_problems() == []


def test_the_sweeper_reconciles_only_pledges_pending_for_too_long(live_campaign, settings):
    settings.PLEDGE_PENDING_RECONCILE_AFTER = timedelta(minutes=10)
    old = pledge_left_pending(campaign=live_campaign, created_at=timezone.now() - timedelta(minutes=11))
    fresh = pledge_left_pending(campaign=live_campaign)

    assert pledges_reconcile() == {"pending_reconciled": 1, "refunds_sent": 0}
    refresh(old, fresh)
    assert (old.status, fresh.status) == (PledgeStatus.FAILED, PledgeStatus.PENDING)


def test_the_sweeper_sends_a_refund_the_gateway_never_confirmed(backer, live_campaign):
    """A charge recorded as failed (campaign closed) whose refund never reached the gateway."""
    stale = pledge_left_pending(campaign=live_campaign, backer=backer, amount=4_000)
    result = get_gateway().charge(idempotency_key=charge_key(stale.pk), amount=4_000, currency="USD", token="tok_visa")
    Pledge.objects.filter(pk=stale.pk).update(
        status=PledgeStatus.FAILED, failure_code="campaign_not_live", payment_reference=result.reference
    )
    assert net_charged(stale) == 4_000

    assert pledges_reconcile() == {"pending_reconciled": 0, "refunds_sent": 1}
    assert net_charged(stale) == 0
    assert pledges_reconcile() == {"pending_reconciled": 0, "refunds_sent": 0}
    assert invariant_problems() == []

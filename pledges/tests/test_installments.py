"""Pay over time: a pledge paid in 3 monthly installments, through the services and the sandbox gateway.

Time is moved the way the worker tests move it: by running beat's work with ``now`` at the
installment's due date (the claim reads it), never by mocking our own code.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import Sum
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import AuditEvent
from crowdfund_site.exceptions import Conflict, InvalidInput
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind, OperationStatus
from escrow.vocabulary import PLATFORM_REVENUE, campaign_escrow_code, initiator_payout_code, refund_key
from escrow.vocabulary_installments import installment_payout_key, installment_refund_key
from fulfilment.models import Survey
from fulfilment.services import survey_answer
from pledges.changes import pledge_change
from pledges.installments import installment_split
from pledges.models import InstallmentPaidTo, InstallmentStatus, Pledge, PledgeInstallment, PledgeStatus
from pledges.services import pledge_cancel, pledge_create
from projects.models import CampaignStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.installments import installments_run_due
from settlement.services import campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

from .factories import VISA, new_key

pytestmark = pytest.mark.django_db

DECLINED = "tok_chargeDeclined"


def _pledge_over_time(*, campaign, backer, amount=15_001, reward=None, token=VISA) -> Pledge:
    return pledge_create(
        backer=backer,
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token=token,
        idempotency_key=new_key(),
        reward=reward,
        pay_over_time=True,
    )


def _installments(pledge) -> list[PledgeInstallment]:
    return list(PledgeInstallment.objects.filter(pledge=pledge).order_by("number"))


def _escrow(campaign) -> int:
    return account_balances(codes=[campaign_escrow_code(campaign.pk)]).get(
        (campaign_escrow_code(campaign.pk), "USD"), 0
    )


def _run_at(moment) -> dict:
    return installments_run_due(now=moment + timedelta(seconds=1))


def _close_and_settle(campaign) -> None:
    campaign.__class__.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert campaigns_close_due(enqueue_settlement=False) == [campaign.pk]
    settlement_run(campaign_id=campaign.pk)


@given(st.integers(min_value=3, max_value=10**12))
def test_three_installments_sum_to_the_pledge_with_the_remainder_on_the_first(amount):
    parts = installment_split(amount)
    assert sum(parts) == amount
    assert parts[1] == parts[2] == amount // 3
    assert 0 <= parts[0] - parts[1] <= 2


def test_the_first_installment_is_charged_and_held_and_the_whole_counts_towards_the_goal(backer, live_campaign):
    pledge = _pledge_over_time(campaign=live_campaign, backer=backer, amount=15_001)

    assert pledge.status == PledgeStatus.HELD
    assert pledge.amount == 15_001
    assert pledge.held_amount == 5_001
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 15_001  # the whole pledged counts, as on Kickstarter
    assert _escrow(live_campaign) == 5_001  # only what was paid is held
    charges = GatewayOperation.objects.filter(kind=OperationKind.CHARGE)
    assert list(charges.values_list("amount", flat=True)) == [5_001]
    first, second, third = _installments(pledge)
    assert [i.amount for i in (first, second, third)] == [5_001, 5_000, 5_000]
    assert first.status == InstallmentStatus.PAID
    assert first.ledger_transaction.idempotency_key == f"hold:pledge:{pledge.pk}"
    assert second.status == third.status == InstallmentStatus.SCHEDULED
    assert second.due_at.month == (pledge.created_at.month % 12) + 1
    assert second.next_attempt_at == second.due_at
    assert third.due_at > second.due_at
    assert ledger_verify() == []


def test_below_the_minimum_a_pledge_cannot_pay_over_time_and_nothing_is_written(backer, live_campaign):
    with pytest.raises(InvalidInput) as refused:
        _pledge_over_time(campaign=live_campaign, backer=backer, amount=14_999)
    assert refused.value.code == "below_pay_over_time_minimum"
    assert "150.00" in refused.value.message
    assert not Pledge.objects.exists()
    assert not GatewayOperation.objects.exists()


def test_the_minimum_is_a_setting(backer, live_campaign, settings):
    settings.PAY_OVER_TIME_MIN_AMOUNT = 30_000
    with pytest.raises(InvalidInput):
        _pledge_over_time(campaign=live_campaign, backer=backer, amount=29_999)
    assert _pledge_over_time(campaign=live_campaign, backer=backer, amount=30_000).installment_plan


def test_due_installments_are_charged_once_each_into_escrow_while_the_campaign_is_live(backer, live_campaign):
    pledge = _pledge_over_time(campaign=live_campaign, backer=backer)
    _first, second, third = _installments(pledge)

    assert installments_run_due()["claimed"] == 0  # nothing is due yet
    assert _run_at(second.due_at)["paid"] == 1
    assert _run_at(second.due_at)["claimed"] == 0  # running again pays nothing twice
    assert _escrow(live_campaign) == 10_001
    assert _run_at(third.due_at)["paid"] == 1

    pledge.refresh_from_db()
    assert pledge.held_amount == pledge.amount == 15_001
    assert pledge.unheld_amount == 0
    assert _escrow(live_campaign) == 15_001
    rows = _installments(pledge)
    assert [i.status for i in rows] == [InstallmentStatus.PAID] * 3
    assert {i.paid_to for i in rows} == {InstallmentPaidTo.ESCROW}
    assert len({i.ledger_transaction_id for i in rows}) == 3  # one ledger transaction each
    charges = GatewayOperation.objects.filter(kind=OperationKind.CHARGE, status=OperationStatus.SUCCEEDED)
    assert charges.aggregate(total=Sum("amount"))["total"] == 15_001
    assert charges.count() == 3
    assert ledger_verify() == []


def test_a_declined_card_is_retried_at_7_and_14_days_then_the_pledge_drops_to_the_reward_it_covers(
    backer, live_campaign, celery_eager, django_capture_on_commit_callbacks
):
    big = RewardTierFactory(campaign=live_campaign, minimum_amount=15_000, quantity_limit=10)
    small = RewardTierFactory(campaign=live_campaign, minimum_amount=5_000, quantity_limit=10)
    pledge = _pledge_over_time(campaign=live_campaign, backer=backer, reward=big)
    PledgeInstallment.objects.filter(pledge=pledge, number__gt=1).update(payment_token=DECLINED)  # the card expired
    second = _installments(pledge)[1]
    mail.outbox.clear()

    assert _run_at(second.due_at)["declined"] == 1
    second.refresh_from_db()
    assert second.status == InstallmentStatus.SCHEDULED
    assert second.next_attempt_at == second.due_at + timedelta(days=7)
    assert _run_at(second.due_at + timedelta(days=6))["claimed"] == 0  # not before the 7th day
    assert _run_at(second.due_at + timedelta(days=7))["declined"] == 1
    second.refresh_from_db()
    assert second.next_attempt_at == second.due_at + timedelta(days=14)
    pledge.refresh_from_db()
    assert pledge.amount == 15_001
    assert pledge.reward_id == big.pk
    with django_capture_on_commit_callbacks(execute=True):
        assert _run_at(second.due_at + timedelta(days=14))["declined"] == 1

    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.HELD
    assert pledge.amount == 5_001
    assert pledge.held_amount == 5_001
    assert pledge.reward_id == small.pk  # the best reward 50.01 covers
    big.refresh_from_db(), small.refresh_from_db()
    assert (big.claimed_count, small.claimed_count) == (0, 1)  # the slot moved
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 5_001
    assert [i.status for i in _installments(pledge)] == [
        InstallmentStatus.PAID,
        InstallmentStatus.FAILED,
        InstallmentStatus.CANCELLED,
    ]
    assert _run_at(second.due_at + timedelta(days=60))["claimed"] == 0  # nothing more is ever charged
    event = AuditEvent.objects.get(action="pledge_installments_ended")
    assert event.details["from_amount"] == 15_001
    assert event.details["to_amount"] == 5_001
    assert [m.to for m in mail.outbox] == [[backer.email]]
    assert "stopped" in mail.outbox[0].subject
    assert "$50.01" in mail.outbox[0].body
    assert ledger_verify() == []


def test_the_backer_is_told_in_chinese_too(backer, live_campaign, celery_eager, django_capture_on_commit_callbacks):
    backer.preferred_language = "zh-hans"
    backer.save()
    pledge = _pledge_over_time(campaign=live_campaign, backer=backer)
    PledgeInstallment.objects.filter(pledge=pledge, number__gt=1).update(payment_token=DECLINED)
    second = _installments(pledge)[1]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for days in (0, 7, 14):
            _run_at(second.due_at + timedelta(days=days))
    pledge.refresh_from_db()
    assert pledge.reward_id is None
    assert pledge.amount == 5_001
    assert "分期" in mail.outbox[0].subject


def test_a_failed_campaign_refunds_every_paid_installment_and_charges_no_more(backer, live_campaign):
    pledge = _pledge_over_time(campaign=live_campaign, backer=backer)
    _first, second, third = _installments(pledge)
    _run_at(second.due_at)
    second.refresh_from_db()

    _close_and_settle(live_campaign)  # 150.01 of a 1,000.00 goal: refunded

    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.REFUNDED
    refunds = dict(GatewayOperation.objects.filter(kind=OperationKind.REFUND).values_list("idempotency_key", "amount"))
    assert refunds == {refund_key(pledge.pk): 5_001, installment_refund_key(second.pk): 5_000}
    third.refresh_from_db()
    assert third.status == InstallmentStatus.CANCELLED
    assert _run_at(third.due_at)["claimed"] == 0
    assert _escrow(live_campaign) == 0
    assert ledger_verify() == []


def test_a_cancelled_pledge_gets_its_installments_back_and_its_plan_ends(backer, live_campaign):
    pledge = _pledge_over_time(campaign=live_campaign, backer=backer)
    second = _installments(pledge)[1]
    _run_at(second.due_at)

    pledge_cancel(pledge=pledge, actor=backer)

    refunded = GatewayOperation.objects.filter(kind=OperationKind.REFUND).aggregate(total=Sum("amount"))["total"]
    assert refunded == 10_001
    assert PledgeInstallment.objects.get(pledge=pledge, number=3).status == InstallmentStatus.CANCELLED
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 0
    assert ledger_verify() == []


def test_after_release_an_installment_goes_to_the_initiator_at_once_minus_the_fee(backer):
    campaign = LiveCampaignFactory(goal=10_000, platform_fee_bps=500)
    pledge = _pledge_over_time(campaign=campaign, backer=backer)
    _first, second, third = _installments(pledge)
    _run_at(second.due_at - timedelta(days=20))  # nothing due yet
    _close_and_settle(campaign)  # 150.01 pledged of a 100.00 goal: released with 50.01 held
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    payout = initiator_payout_code(campaign.initiator_id)
    assert account_balances(codes=[payout])[(payout, "USD")] == 5_001 - 250  # 5 % of 50.01, as settlement splits it

    assert _run_at(second.due_at)["paid_out"] == 1
    assert _run_at(second.due_at)["claimed"] == 0
    second.refresh_from_db()
    assert second.status == InstallmentStatus.PAID
    assert second.paid_to == InstallmentPaidTo.INITIATOR
    op = GatewayOperation.objects.get(idempotency_key=installment_payout_key(second.pk))
    assert (op.kind, op.amount) == (OperationKind.PAYOUT, 4_750)
    assert account_balances(codes=[payout])[(payout, "USD")] == 4_751 + 4_750
    txn = LedgerTransaction.objects.get(idempotency_key=installment_payout_key(second.pk))
    assert second.ledger_transaction_id == txn.pk
    assert {e.account.code: e.amount for e in txn.entries.select_related("account")}[PLATFORM_REVENUE] == 250
    _run_at(third.due_at)
    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.RELEASED
    assert pledge.held_amount == 5_001
    assert _escrow(campaign) == 0
    assert ledger_verify() == []


def test_a_plan_pledge_cannot_change_its_amount(backer, live_campaign):
    pledge = _pledge_over_time(campaign=live_campaign, backer=backer)
    with pytest.raises(Conflict) as refused:
        pledge_change(pledge=pledge, actor=backer, idempotency_key=new_key(), amount=20_000, payment_token="tok_visa")
    assert refused.value.code == "installment_plan_fixed"


def test_surveys_wait_until_the_plan_is_paid_in_full(backer):
    campaign = LiveCampaignFactory(goal=10_000)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=15_000)
    pledge = _pledge_over_time(campaign=campaign, backer=backer, reward=reward)
    _close_and_settle(campaign)
    Survey.objects.create(campaign=campaign, asks_address=False)

    with pytest.raises(Conflict) as refused:
        survey_answer(pledge_id=pledge.pk, actor=backer, answers={})
    assert refused.value.code == "installments_unpaid"
    for installment in _installments(pledge)[1:]:
        _run_at(installment.due_at)
    assert survey_answer(pledge_id=pledge.pk, actor=backer, answers={}).pledge_id == pledge.pk


def test_verify_ledger_names_installments_that_do_not_add_up_or_were_charged_twice(backer, live_campaign):
    pledge = _pledge_over_time(campaign=live_campaign, backer=backer)
    second = _installments(pledge)[1]
    _run_at(second.due_at)
    assert ledger_verify() == []

    PledgeInstallment.objects.filter(pledge=pledge, number=3).update(amount=5_001)
    assert any("do not sum to their amount" in p for p in ledger_verify())
    PledgeInstallment.objects.filter(pledge=pledge, number=3).update(amount=5_000)

    # A second charge of the same installment under another attempt's key: charged twice.
    GatewayOperation.objects.create(
        kind=OperationKind.CHARGE,
        idempotency_key=f"charge:installment:{second.pk}:9",
        status=OperationStatus.SUCCEEDED,
        amount=5_000,
        currency="USD",
    )
    assert any("charged more than once" in p for p in ledger_verify())
    GatewayOperation.objects.filter(idempotency_key=f"charge:installment:{second.pk}:9").delete()

    PledgeInstallment.objects.filter(pk=second.pk).update(amount=4_000)
    problems = ledger_verify()
    assert any("without one ledger transaction of their amount" in p for p in problems)

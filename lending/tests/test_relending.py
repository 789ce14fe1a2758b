"""Re-lending: a lender pays a new loan from their balance, once, never above it, refunded back to it."""

import uuid

import pytest
from django.core.management import call_command
from django.db.models import F

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, PaymentDeclined
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, LedgerEntry, LedgerTransaction, OperationKind
from escrow.vocabulary import (
    backer_funding_code,
    campaign_escrow_code,
    charge_key,
    hold_key,
    lender_balance_code,
    refund_key,
)
from lending.models import LenderDeclaration, Loan, LoanLender
from lending.selectors import lender_balances
from lending.services import lender_withdraw
from pledges.changes import pledge_change
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_cancel, pledge_create, pledge_reconcile_pending
from pledges.tests.factories import VISA, pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import LiveCampaignFactory
from settlement.verification import ledger_verify

from .factories import debt_campaign_live
from .test_loan_settlement import close_and_settle
from .test_withdrawals import balance_of, lender_with_balance

pytestmark = pytest.mark.django_db


def relend(*, lender, campaign, amount: int, from_balance: int, token: str = "", key: str | None = None) -> Pledge:
    return pledge_create(
        backer=lender,
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token=token,
        idempotency_key=key or str(uuid.uuid4()),
        from_balance=from_balance,
    )


def escrow_of(campaign) -> int:
    code = campaign_escrow_code(campaign.pk)
    return account_balances(codes=[code]).get((code, campaign.currency), 0)


def entries_of(key: str) -> set[tuple[str, int]]:
    return set(LedgerEntry.objects.filter(transaction__idempotency_key=key).values_list("account__code", "amount"))


def nothing_changed_since(counts) -> bool:
    return counts == (Pledge.objects.count(), LedgerTransaction.objects.count(), GatewayOperation.objects.count())


def counts():
    return (Pledge.objects.count(), LedgerTransaction.objects.count(), GatewayOperation.objects.count())


def test_a_lender_lends_their_whole_balance_to_another_loan_without_a_card():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)

    pledge = relend(lender=lender, campaign=campaign, amount=balance, from_balance=balance)

    assert (pledge.status, pledge.amount, pledge.from_balance, pledge.card_amount) == (
        PledgeStatus.HELD,
        balance,
        balance,
        0,
    )
    assert balance_of(lender) == 0
    assert escrow_of(campaign) == balance
    # One ledger transaction: from the lender's balance into the campaign's escrow; no card charged.
    assert entries_of(hold_key(pledge.pk)) == {
        (lender_balance_code(lender.pk), -balance),
        (campaign_escrow_code(campaign.pk), balance),
    }
    assert not GatewayOperation.objects.filter(idempotency_key=charge_key(pledge.pk)).exists()
    campaign.refresh_from_db()
    assert campaign.pledged_amount == balance
    assert [(b.balance, b.available) for b in lender_balances(user=lender)] == []  # nothing left to show
    assert ledger_verify() == []


def test_a_lender_pays_part_from_their_balance_and_the_rest_by_card():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)

    pledge = relend(lender=lender, campaign=campaign, amount=balance + 2_500, from_balance=balance, token=VISA)

    assert pledge.status == PledgeStatus.HELD
    assert balance_of(lender) == 0
    assert escrow_of(campaign) == balance + 2_500
    charge = GatewayOperation.objects.get(idempotency_key=charge_key(pledge.pk))
    assert (charge.kind, charge.amount) == (OperationKind.CHARGE, 2_500)
    assert entries_of(hold_key(pledge.pk)) == {
        (backer_funding_code(lender.pk), -2_500),
        (lender_balance_code(lender.pk), -balance),
        (campaign_escrow_code(campaign.pk), balance + 2_500),
    }
    assert ledger_verify() == []


def test_a_retry_with_the_same_key_takes_the_balance_once():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)

    first = relend(lender=lender, campaign=campaign, amount=1_000, from_balance=1_000, key="same")
    again = relend(lender=lender, campaign=campaign, amount=1_000, from_balance=1_000, key="same")

    assert first.pk == again.pk
    assert balance_of(lender) == balance - 1_000
    with pytest.raises(Conflict) as refusal:
        relend(lender=lender, campaign=campaign, amount=1_000, from_balance=500, key="same", token=VISA)
    assert refusal.value.code == "idempotency_key_reused"
    assert ledger_verify() == []


def test_more_than_the_balance_is_refused_with_a_clear_error_and_nothing_changes():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)
    before = counts()

    with pytest.raises(InvalidInput) as refusal:
        relend(lender=lender, campaign=campaign, amount=balance + 1, from_balance=balance + 1)

    assert (refusal.value.code, refusal.value.field) == ("balance_too_small", "from_balance")
    assert "$" in refusal.value.message  # says what is available
    assert nothing_changed_since(before)
    assert balance_of(lender) == balance
    assert escrow_of(campaign) == 0


def test_a_lender_without_a_balance_is_told_so_and_nothing_changes():
    campaign = debt_campaign_live(goal=100_000)
    before = counts()

    with pytest.raises(InvalidInput) as refusal:
        relend(lender=UserFactory(), campaign=campaign, amount=1_000, from_balance=1_000)

    assert refusal.value.code == "balance_too_small"
    assert "no balance" in refusal.value.message
    assert nothing_changed_since(before)


@pytest.mark.parametrize(
    ("amount", "from_balance", "token", "code"),
    [
        (1_000, -5, VISA, "amount_not_positive"),
        (1_000, 1_001, VISA, "from_balance_above_amount"),
        (1_000, 400, "", "payment_token_required"),  # the rest needs a card
    ],
)
def test_a_bad_part_from_the_balance_is_refused_and_nothing_changes(amount, from_balance, token, code):
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)
    before = counts()

    with pytest.raises(InvalidInput) as refusal:
        relend(lender=lender, campaign=campaign, amount=amount, from_balance=from_balance, token=token)

    assert refusal.value.code == code
    assert nothing_changed_since(before)
    assert balance_of(lender) == balance


def test_a_campaign_that_is_no_loan_takes_nothing_from_a_balance():
    lender, _balance = lender_with_balance()
    campaign = LiveCampaignFactory()
    before = counts()

    with pytest.raises(InvalidInput) as refusal:
        relend(lender=lender, campaign=campaign, amount=1_000, from_balance=1_000)

    assert refusal.value.code == "balance_not_accepted"
    assert nothing_changed_since(before)


def test_lending_ones_balance_to_ones_own_loan_is_still_refused():
    lender, balance = lender_with_balance()
    own = debt_campaign_live(goal=100_000)
    own.initiator = lender
    own.save(update_fields=["initiator"])

    with pytest.raises(NotAllowed) as refusal:
        relend(lender=lender, campaign=own, amount=1_000, from_balance=1_000)

    assert refusal.value.code == "own_campaign"
    assert balance_of(lender) == balance


def test_investor_limits_count_what_is_lent_from_the_balance(settings):
    lender, balance = lender_with_balance()
    settings.LENDING_INVESTOR_POLICY = "reg_cf"
    # The floor of 2,500.00 a year; the first loan (600.00) already counts towards it.
    LenderDeclaration.objects.create(user=lender, currency="USD", annual_income=1_000_000, net_worth=1_000_000)
    campaign = debt_campaign_live(goal=1_000_000)
    before = counts()

    with pytest.raises(InvalidInput) as refusal:
        relend(lender=lender, campaign=campaign, amount=250_000, from_balance=balance, token=VISA)

    assert refusal.value.code == "investor_limit"
    assert nothing_changed_since(before)
    assert balance_of(lender) == balance


def test_a_failed_loan_campaign_refunds_the_balance_part_to_the_balance_and_the_card_part_to_the_card():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=1_000_000)  # never reached
    whole = relend(lender=lender, campaign=campaign, amount=balance // 2, from_balance=balance // 2)
    other_lender, other_balance = lender_with_balance()
    mixed = relend(
        lender=other_lender, campaign=campaign, amount=other_balance + 700, from_balance=other_balance, token=VISA
    )
    assert balance_of(lender) == balance - balance // 2

    campaign = close_and_settle(campaign)

    assert campaign.status == CampaignStatus.FAILED
    assert set(Pledge.objects.filter(campaign=campaign).values_list("status", flat=True)) == {PledgeStatus.REFUNDED}
    assert balance_of(lender) == balance
    assert balance_of(other_lender) == other_balance
    # Only the card's part went back to the card; the balance's part never reached the gateway.
    assert not GatewayOperation.objects.filter(idempotency_key=refund_key(whole.pk)).exists()
    card_refund = GatewayOperation.objects.get(idempotency_key=refund_key(mixed.pk))
    assert (card_refund.kind, card_refund.amount) == (OperationKind.REFUND, 700)
    assert entries_of(refund_key(mixed.pk)) == {
        (campaign_escrow_code(campaign.pk), -(other_balance + 700)),
        (backer_funding_code(other_lender.pk), 700),
        (lender_balance_code(other_lender.pk), other_balance),
    }
    assert escrow_of(campaign) == 0
    assert ledger_verify() == []
    call_command("verify_ledger")  # exits non-zero on any broken invariant


def test_a_funded_loan_disburses_what_was_lent_from_the_balance_like_any_other_money():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=balance + 10_000)
    pledge = relend(lender=lender, campaign=campaign, amount=balance, from_balance=balance)
    pledge_held(campaign=campaign, amount=10_000)

    campaign = close_and_settle(campaign)

    assert campaign.status == CampaignStatus.SUCCEEDED
    loan = Loan.objects.get(campaign=campaign)
    assert loan.principal == balance + 10_000
    share = LoanLender.objects.get(loan=loan, lender=lender)
    assert (share.principal, share.pledge_id) == (balance, pledge.pk)
    payout = GatewayOperation.objects.get(kind=OperationKind.PAYOUT, destination__startswith="initiator:")
    assert payout.amount == loan.principal - loan.principal * campaign.platform_fee_bps // 10_000
    assert balance_of(lender) == 0
    assert escrow_of(campaign) == 0
    assert ledger_verify() == []
    call_command("verify_ledger")


def test_cancelling_a_loan_paid_from_the_balance_gives_it_back_to_the_balance():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)
    pledge = relend(lender=lender, campaign=campaign, amount=1_000, from_balance=1_000)

    pledge_cancel(pledge=pledge, actor=lender)

    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.CANCELLED
    assert balance_of(lender) == balance
    assert not GatewayOperation.objects.filter(kind=OperationKind.REFUND).exists()
    assert ledger_verify() == []


def test_the_amount_of_a_loan_paid_from_the_balance_cannot_change():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)
    pledge = relend(lender=lender, campaign=campaign, amount=1_000, from_balance=1_000)

    with pytest.raises(Conflict) as refusal:
        pledge_change(pledge=pledge, actor=lender, amount=2_000, payment_token=VISA, idempotency_key="c-1")

    assert refusal.value.code == "paid_from_balance"
    assert balance_of(lender) == balance - 1_000


def test_a_declined_card_for_the_rest_takes_nothing_from_the_balance():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)

    with pytest.raises(PaymentDeclined):
        relend(lender=lender, campaign=campaign, amount=balance + 100, from_balance=balance, token="tok_chargeDeclined")

    assert Pledge.objects.get(campaign=campaign).status == PledgeStatus.FAILED
    assert balance_of(lender) == balance
    assert lender_balances(user=lender)[0].available == balance
    assert ledger_verify() == []


def test_a_pending_loan_paid_from_the_balance_holds_it_back_from_a_withdrawal_until_it_is_finished():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)
    # As a crash right after writing the pending pledge leaves it: reserved, nothing posted.
    pending = Pledge.objects.create(
        backer=lender,
        campaign=campaign,
        amount=balance,
        from_balance=balance,
        currency="USD",
        idempotency_key="crashed",
        request_fingerprint="x",
    )
    assert lender_balances(user=lender)[0].available == 0

    with pytest.raises(InvalidInput) as refusal:
        lender_withdraw(lender=lender, currency="USD", amount=1, idempotency_key="w-1")
    assert refusal.value.code == "amount_above_balance"
    assert ledger_verify() == []

    pledge_reconcile_pending(pledge=pending)  # the sweeper finishes it: nothing to charge

    pending.refresh_from_db()
    assert pending.status == PledgeStatus.HELD
    assert balance_of(lender) == 0
    assert ledger_verify() == []


def test_verify_ledger_names_a_pledge_whose_hold_took_other_than_its_balance_part():
    lender, _balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)
    pledge = relend(lender=lender, campaign=campaign, amount=1_000, from_balance=1_000)
    # A record that says less came from the balance than the ledger took.
    Pledge.objects.filter(pk=pledge.pk).update(from_balance=F("from_balance") - 1)

    problems = ledger_verify()

    assert any("part paid from the balance" in p and str(pledge.pk) in p for p in problems), problems

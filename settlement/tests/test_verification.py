import io

import pytest
from django.core.management import CommandError, call_command

from escrow.ledger import Posting, ledger_account_get_or_create, ledger_post
from escrow.models import (
    AccountKind,
    GatewayOperation,
    LedgerEntry,
    LedgerTransaction,
    OperationKind,
    TransactionKind,
)
from escrow.vocabulary import PLATFORM_REVENUE, campaign_escrow_code, campaign_payable_code
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_held
from projects.models import Campaign
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign_with_pledges(live_campaign):
    """A live campaign holding two pledges made through the services."""
    pledge_held(campaign=live_campaign, amount=3_000)
    pledge_held(campaign=live_campaign, amount=2_000)
    return live_campaign


def escrow_account(campaign):
    return ledger_account_get_or_create(
        code=campaign_escrow_code(campaign.pk), kind=AccountKind.ESCROW, currency=campaign.currency
    )


def settled(campaign, *, goal_reached=True):
    Campaign.objects.filter(pk=campaign.pk).update(deadline=campaign.launched_at, goal=1 if goal_reached else 10**9)
    campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def only_problem(fragment: str) -> str:
    matching = [p for p in ledger_verify() if fragment in p]
    assert len(matching) == 1, ledger_verify()
    return matching[0]


def test_a_consistent_ledger_has_no_problems(campaign_with_pledges):
    assert ledger_verify() == []
    settled(campaign_with_pledges)
    assert ledger_verify() == []


def test_an_unbalanced_transaction_is_named(campaign_with_pledges):
    txn = LedgerTransaction.objects.create(kind=TransactionKind.ADJUSTMENT, idempotency_key="broken", reference="x")
    LedgerEntry.objects.bulk_create(
        [LedgerEntry(transaction=txn, account=escrow_account(campaign_with_pledges), amount=100, currency="USD")]
    )
    problems = ledger_verify()
    assert f"Transactions whose entries do not sum to zero: {txn.pk}" in problems
    assert f"Transactions with fewer than two entries: {txn.pk}" in problems
    assert f"campaign {campaign_with_pledges.pk}: escrow 5100 != held 5000" in only_problem("Escrow balance differs")


def test_entries_in_another_currency_than_their_account_are_named(campaign_with_pledges):
    revenue = ledger_account_get_or_create(code=PLATFORM_REVENUE, kind=AccountKind.REVENUE, currency="USD")
    payable = ledger_account_get_or_create(code="campaign:0:payable", kind=AccountKind.PAYABLE, currency="USD")
    txn = LedgerTransaction.objects.create(kind=TransactionKind.ADJUSTMENT, idempotency_key="eur", reference="x")
    entries = LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(transaction=txn, account=revenue, amount=-100, currency="EUR"),
            LedgerEntry(transaction=txn, account=payable, amount=100, currency="EUR"),
        ]
    )
    assert only_problem("another currency") == (
        f"Entries in another currency than their account: {entries[0].pk}, {entries[1].pk}"
    )


def test_a_held_pledge_without_a_hold_is_named(live_campaign, backer):
    ghost = Pledge.objects.create(
        backer=backer,
        campaign=live_campaign,
        amount=5_000,
        currency="USD",
        status=PledgeStatus.HELD,
        idempotency_key="ghost",
        request_fingerprint="ghost",
    )
    Campaign.objects.filter(pk=live_campaign.pk).update(pledged_amount=5_000, backer_count=1)
    assert only_problem("without a hold") == f"Pledges without a hold in the ledger: {ghost.pk}"
    assert f"campaign {live_campaign.pk}: escrow 0 != held 5000" in only_problem("Escrow balance differs")


def test_a_failed_pledge_with_a_hold_is_named(campaign_with_pledges):
    failed = campaign_with_pledges.pledges.first()
    Pledge.objects.filter(pk=failed.pk).update(status=PledgeStatus.FAILED)
    assert only_problem("never charged") == f"Pledges held in the ledger but never charged: {failed.pk}"


def test_a_pledge_marked_released_without_a_release_posting_is_named(campaign_with_pledges):
    pledge = campaign_with_pledges.pledges.first()
    Pledge.objects.filter(pk=pledge.pk).update(status=PledgeStatus.RELEASED)
    assert only_problem("without a release") == f"Pledges released without a release posting: {pledge.pk}"


def test_a_pledge_refunded_twice_is_named(campaign_with_pledges):
    campaign = settled(campaign_with_pledges, goal_reached=False)
    pledge = campaign.pledges.first()
    funding = ledger_account_get_or_create(
        code=f"backer:{pledge.backer_id}:funding", kind=AccountKind.FUNDING_SOURCE, currency="USD"
    )
    ledger_post(
        posting=Posting(
            kind=TransactionKind.REFUND,
            idempotency_key=f"refund-again:pledge:{pledge.pk}",
            reference=f"pledge:{pledge.pk}",
            currency="USD",
            legs=[(escrow_account(campaign), -pledge.amount), (funding, pledge.amount)],
        )
    )
    assert only_problem("more than once") == f"Pledges released or refunded more than once: pledge:{pledge.pk}"
    assert str(campaign.pk) in only_problem("Settled campaigns with money left")


def test_a_settled_campaign_with_money_left_in_payable_is_named(campaign_with_pledges):
    campaign = settled(campaign_with_pledges)
    revenue = ledger_account_get_or_create(code=PLATFORM_REVENUE, kind=AccountKind.REVENUE, currency="USD")
    payable = ledger_account_get_or_create(
        code=campaign_payable_code(campaign.pk), kind=AccountKind.PAYABLE, currency="USD"
    )
    ledger_post(
        posting=Posting(
            kind=TransactionKind.ADJUSTMENT,
            idempotency_key="oops",
            reference=f"campaign:{campaign.pk}",
            currency="USD",
            legs=[(revenue, -1), (payable, 1)],
        )
    )
    assert only_problem("money left") == f"Settled campaigns with money left in escrow or payable: {campaign.pk}"


def test_a_campaign_showing_the_wrong_total_is_named(campaign_with_pledges):
    Campaign.objects.filter(pk=campaign_with_pledges.pk).update(pledged_amount=5_001)
    assert only_problem("shown total") == (
        f"Campaigns whose shown total differs from their held pledges: {campaign_with_pledges.pk}"
    )


def test_a_gateway_charge_disagreeing_with_its_refunds_is_named(campaign_with_pledges):
    charge = GatewayOperation.objects.filter(kind=OperationKind.CHARGE).first()
    GatewayOperation.objects.filter(pk=charge.pk).update(refunded_amount=1)
    assert only_problem("Gateway") == f"Gateway charges whose refunded amount disagrees with their refunds: {charge.pk}"


def test_no_more_than_ten_rows_are_named_per_problem(live_campaign):
    pledges = [pledge_held(campaign=live_campaign, amount=100) for _ in range(11)]
    Pledge.objects.filter(pk__in=[p.pk for p in pledges]).update(status=PledgeStatus.FAILED)
    problem = only_problem("never charged")
    assert problem.endswith(", ...")
    assert str(pledges[9].pk) in problem
    assert f" {pledges[10].pk}" not in problem


# --- manage.py verify_ledger ----------------------------------------------------------------------------


def test_verify_ledger_command_reports_success(campaign_with_pledges):
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()


def test_verify_ledger_command_fails_and_names_the_offending_rows(campaign_with_pledges):
    Campaign.objects.filter(pk=campaign_with_pledges.pk).update(pledged_amount=1)
    other = LiveCampaignFactory()
    txn = LedgerTransaction.objects.create(kind=TransactionKind.ADJUSTMENT, idempotency_key="broken", reference="x")
    LedgerEntry.objects.bulk_create(
        [LedgerEntry(transaction=txn, account=escrow_account(other), amount=7, currency="USD")]
    )
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="4 ledger invariant") as failed:
        call_command("verify_ledger", stdout=out, stderr=err)
    assert failed.value.returncode != 0
    report = err.getvalue()
    assert f"FAIL Transactions whose entries do not sum to zero: {txn.pk}" in report
    assert f"FAIL Transactions with fewer than two entries: {txn.pk}" in report
    assert f"campaign {other.pk}: escrow 7 != held 0" in report
    assert f"Campaigns whose shown total differs from their held pledges: {campaign_with_pledges.pk}" in report
    assert "Ledger OK" not in out.getvalue()


def test_a_transaction_without_entries_is_named(campaign_with_pledges):
    txn = LedgerTransaction.objects.create(kind=TransactionKind.FEE, idempotency_key="header-only", reference="x")
    assert ledger_verify() == [f"Transactions without entries: {txn.pk}"]

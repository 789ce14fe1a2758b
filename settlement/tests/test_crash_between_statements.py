"""A worker killed between a posting's two INSERTs (header, then entries) leaves nothing behind.

The failure is real: a database trigger refuses the entries INSERT of one kind of transaction,
as a dying connection would, after the header INSERT went through. The tests commit
(``transaction=True``) like a worker does, so a header written outside a transaction would stay.
"""

import contextlib

import pytest
from django.db import connection

from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind, TransactionKind
from escrow.vocabulary import fee_key, hold_account_specs, hold_posting, payout_key
from pledges.tests.factories import pledge_held
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db(transaction=True)

CRASH = "worker killed between the two INSERTs"

_SQLITE = """
CREATE TRIGGER test_crash_between_inserts BEFORE INSERT ON escrow_ledgerentry
WHEN (SELECT kind FROM escrow_ledgertransaction WHERE id = NEW.transaction_id) = '{kind}'
BEGIN SELECT RAISE(ABORT, 'worker killed between the two INSERTs'); END
"""
_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION test_crash_between_inserts() RETURNS trigger AS $$
BEGIN
    IF (SELECT kind FROM escrow_ledgertransaction WHERE id = NEW.transaction_id) = TG_ARGV[0] THEN
        RAISE EXCEPTION 'worker killed between the two INSERTs';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""


@contextlib.contextmanager
def entries_insert_fails(kind: TransactionKind):
    """Make the database refuse the entries of ``kind`` transactions while inside the block."""
    kind = TransactionKind(kind).value  # a known kind: safe to write into the trigger's text
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_POSTGRES_FUNCTION)
            cursor.execute(
                "CREATE TRIGGER test_crash_between_inserts BEFORE INSERT ON escrow_ledgerentry FOR EACH ROW "
                f"EXECUTE FUNCTION test_crash_between_inserts('{kind}')"
            )
        else:
            cursor.execute(_SQLITE.format(kind=kind))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("DROP TRIGGER test_crash_between_inserts ON escrow_ledgerentry")
                cursor.execute("DROP FUNCTION test_crash_between_inserts()")
            else:
                cursor.execute("DROP TRIGGER test_crash_between_inserts")


def test_a_settlement_killed_while_posting_its_fee_completes_when_run_again():
    campaign = LiveCampaignFactory(goal=5_000)
    pledge_held(campaign=campaign, amount=3_000)
    pledge_held(campaign=campaign, amount=4_000)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=campaign.launched_at)
    campaigns_close_due(enqueue_settlement=False)

    with entries_insert_fails(TransactionKind.FEE), pytest.raises(Exception, match=CRASH):
        settlement_run(campaign_id=campaign.pk)
    assert not LedgerTransaction.objects.filter(idempotency_key=fee_key(campaign.pk)).exists()
    assert ledger_verify() == []

    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    fee = LedgerTransaction.objects.get(idempotency_key=fee_key(campaign.pk))
    assert sum(e.amount for e in fee.entries.all() if e.amount > 0) == 350  # 5 % of 70.00
    payouts = GatewayOperation.objects.filter(kind=OperationKind.PAYOUT, idempotency_key=payout_key(campaign.pk))
    assert list(payouts.values_list("amount", flat=True)) == [7_000 - 350]
    assert ledger_verify() == []


def test_a_posting_killed_between_its_inserts_leaves_nothing_and_posts_in_full_when_retried(backer):
    campaign = LiveCampaignFactory()
    specs = hold_account_specs(backer_id=backer.pk, campaign_id=campaign.pk)
    accounts = ledger_accounts_get_or_create(specs=specs, currency=campaign.currency)
    posting = hold_posting(
        pledge_id=10**9, backer_id=backer.pk, campaign_id=campaign.pk, amount=500, currency="USD", accounts=accounts
    )
    with entries_insert_fails(TransactionKind.HOLD), pytest.raises(Exception, match=CRASH):
        ledger_post(posting=posting)
    assert not LedgerTransaction.objects.filter(idempotency_key=posting.idempotency_key).exists()

    txn = ledger_post(posting=posting)
    assert sorted(txn.entries.values_list("amount", flat=True)) == [-500, 500]

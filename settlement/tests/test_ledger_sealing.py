"""The sealing task and ``verify_ledger``: a sealed row changed in the database is named."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from escrow.checkpoints import checkpoint_latest
from escrow.models import LedgerTransaction
from escrow.tests.test_checkpoints import tamper
from escrow.vocabulary import hold_key
from pledges.tests.factories import pledge_held
from projects.models import Campaign
from settlement.services import campaigns_close_due, settlement_run
from settlement.tasks import seal_ledger
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


def test_the_task_seals_a_settled_campaigns_ledger_and_verify_ledger_passes(live_campaign, settings):
    settings.LEDGER_CHECKPOINT_BATCH_SIZE = 3
    for amount in (40_000, 35_000, 30_000):
        pledge_held(campaign=live_campaign, amount=amount)
    Campaign.objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert campaigns_close_due(enqueue_settlement=False) == [live_campaign.pk]
    settlement_run(campaign_id=live_campaign.pk)
    transactions = LedgerTransaction.objects.count()
    assert transactions == 3 + 3 + 2  # holds, releases, fee and payout

    assert seal_ledger() == transactions
    assert seal_ledger() == 0
    assert checkpoint_latest().sealed_total == transactions
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()


def test_verify_ledger_fails_naming_a_sealed_transaction_changed_in_the_database(live_campaign):
    pledge = pledge_held(campaign=live_campaign, amount=5_000)
    pledge_held(campaign=live_campaign, amount=7_000)
    call_command("seal_ledger", stdout=io.StringIO())
    hold = LedgerTransaction.objects.get(idempotency_key=hold_key(pledge.pk))

    # Someone with database access makes the backer's hold look smaller, on both legs, so that
    # every other invariant still holds: only the seal can tell.
    tamper("UPDATE escrow_ledgerentry SET amount = amount / 5 WHERE transaction_id = %s", [hold.pk])
    tamper("UPDATE pledges_pledge SET amount = 1000 WHERE id = %s", [pledge.pk])
    tamper("UPDATE projects_campaign SET pledged_amount = 8000 WHERE id = %s", [live_campaign.pk])

    assert ledger_verify() == [f"Checkpoint 1: sealed transactions changed since they were sealed: {hold.pk}"]
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 ledger invariant"):
        call_command("verify_ledger", stderr=err)
    assert f"sealed transactions changed since they were sealed: {hold.pk}" in err.getvalue()


def test_staff_see_the_checkpoints_and_cannot_change_them(admin_client, live_campaign):
    pledge_held(campaign=live_campaign, amount=5_000)
    seal_ledger()
    page = admin_client.get("/admin/escrow/ledgercheckpoint/")
    assert page.status_code == 200
    assert checkpoint_latest().hash in page.content.decode()
    assert admin_client.get("/admin/escrow/ledgercheckpoint/add/").status_code == 403

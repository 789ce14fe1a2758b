"""Sealing under real concurrency on PostgreSQL: two workers at once, and postings still in flight."""

import threading

import pytest
from django.db import connection, transaction

from crowdfund_site.tests.concurrency import run_together
from escrow.checkpoints import checkpoint_latest, checkpoints_verify, ledger_seal
from escrow.models import LedgerCheckpoint
from escrow.tests.test_checkpoints import post_holds, usd_accounts

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: SQLite has one writer"),
]


@pytest.fixture
def accounts():
    return usd_accounts()


def test_two_workers_sealing_at_once_seal_every_transaction_once(accounts):
    post_holds(accounts, 50)

    results = run_together([lambda: ledger_seal(batch_size=7) for _ in range(3)])

    assert sum(results) == 50
    checkpoints = list(LedgerCheckpoint.objects.order_by("sequence"))
    assert [c.sequence for c in checkpoints] == list(range(1, 9))
    assert sum(c.transaction_count for c in checkpoints) == 50
    assert checkpoints_verify() == []


def test_a_posting_still_in_flight_below_a_committed_one_is_not_skipped(accounts):
    """A posting's id is handed out before it commits: sealing must wait for it, not seal past it."""
    in_flight_posted = threading.Event()
    may_commit = threading.Event()

    def slow_posting():
        try:
            with transaction.atomic():
                post_holds(accounts, 1, start=1)
                in_flight_posted.set()
                assert may_commit.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_posting)
    thread.start()
    assert in_flight_posted.wait(timeout=30)
    later = post_holds(accounts, 1, start=2)[0]  # a higher id, committed first

    assert ledger_seal(wait_seconds=0.3) == 0  # it does not seal id 2 and leave id 1 out for ever
    may_commit.set()
    thread.join(timeout=30)

    assert ledger_seal() == 2
    assert checkpoint_latest().last_transaction_id == later
    assert checkpoints_verify() == []

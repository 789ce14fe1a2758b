"""Sealed checkpoints: chained over the ledger in id order, and any later change to a sealed row is named."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from escrow.checkpoints import (
    canonical_transaction,
    checkpoint_latest,
    checkpoints_verify,
    ledger_seal,
    transaction_digests,
)
from escrow.ledger import Posting, ledger_accounts_get_or_create, ledger_post
from escrow.models import (
    AccountKind,
    LedgerCheckpoint,
    LedgerEntry,
    LedgerImmutableError,
    LedgerTransaction,
    TransactionKind,
)

pytestmark = pytest.mark.django_db


def usd_accounts():
    return ledger_accounts_get_or_create(
        specs=[("backer:1:funding", AccountKind.FUNDING_SOURCE), ("campaign:1:escrow", AccountKind.ESCROW)],
        currency="USD",
    )


@pytest.fixture
def accounts():
    return usd_accounts()


def post_holds(accounts, count: int, *, start: int = 1) -> list[int]:
    ids = []
    for n in range(start, start + count):
        txn = ledger_post(
            posting=Posting(
                kind=TransactionKind.HOLD,
                idempotency_key=f"hold:pledge:{n}",
                reference=f"pledge:{n}",
                currency="USD",
                legs=[(accounts["backer:1:funding"], -100 * n), (accounts["campaign:1:escrow"], 100 * n)],
            )
        )
        ids.append(txn.pk)
    return ids


APPEND_ONLY_TABLES = ["escrow_ledgertransaction", "escrow_ledgerentry", "escrow_ledgercheckpoint"]


def tamper(sql: str, params: list) -> None:
    """Change ledger rows behind the application's back, as someone with database access could."""
    postgres = connection.vendor == "postgresql"  # its append-only triggers refuse it otherwise
    with connection.cursor() as cursor:
        if postgres:  # a table with deferred foreign-key checks pending cannot be altered
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in APPEND_ONLY_TABLES if postgres else []:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        cursor.execute(sql, params)
        for table in APPEND_ONLY_TABLES if postgres else []:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")


def test_sealing_chains_checkpoints_of_at_most_a_batch_over_every_transaction(accounts):
    ids = post_holds(accounts, 25)

    assert ledger_seal(batch_size=10) == 25
    checkpoints = list(LedgerCheckpoint.objects.order_by("sequence"))
    assert [(c.first_transaction_id, c.last_transaction_id) for c in checkpoints] == [
        (ids[0], ids[9]),
        (ids[10], ids[19]),
        (ids[20], ids[24]),
    ]
    assert [c.transaction_count for c in checkpoints] == [10, 10, 5]
    assert checkpoints[-1].sealed_total == 25
    assert [c.previous_hash for c in checkpoints] == ["", checkpoints[0].hash, checkpoints[1].hash]
    assert len({c.hash for c in checkpoints}) == 3
    assert checkpoints_verify() == []


def test_sealing_again_seals_only_what_is_new(accounts):
    post_holds(accounts, 3)
    assert ledger_seal() == 3
    assert ledger_seal() == 0
    assert LedgerCheckpoint.objects.count() == 1

    new = post_holds(accounts, 2, start=4)
    assert ledger_seal() == 2
    latest = checkpoint_latest()
    assert (latest.sequence, latest.first_transaction_id, latest.last_transaction_id) == (2, new[0], new[1])
    assert latest.sealed_total == 5
    assert checkpoints_verify() == []


def test_a_run_limited_to_some_checkpoints_resumes_where_it_stopped(accounts):
    post_holds(accounts, 7)
    assert ledger_seal(batch_size=2, max_checkpoints=2) == 4
    assert ledger_seal(batch_size=2) == 3
    assert LedgerCheckpoint.objects.count() == 4
    assert checkpoints_verify() == []


def test_the_same_ledger_seals_to_the_same_hash(accounts):
    post_holds(accounts, 4)
    ledger_seal()
    first = checkpoint_latest().hash
    tamper("DELETE FROM escrow_ledgercheckpoint", [])
    ledger_seal()
    assert checkpoint_latest().hash == first


def test_checkpoints_are_append_only(accounts):
    post_holds(accounts, 1)
    ledger_seal()
    checkpoint = checkpoint_latest()
    with pytest.raises(LedgerImmutableError):
        LedgerCheckpoint.objects.update(hash="0" * 64)
    with pytest.raises(LedgerImmutableError):
        checkpoint.delete()


@pytest.mark.parametrize(
    ("what", "sql"),
    [
        ("an entry's amount", "UPDATE escrow_ledgerentry SET amount = amount * 10 WHERE transaction_id = %s"),
        ("a transaction's reference", "UPDATE escrow_ledgertransaction SET reference = 'pledge:999' WHERE id = %s"),
        ("a transaction's kind", "UPDATE escrow_ledgertransaction SET kind = 'release' WHERE id = %s"),
        (
            "an entry removed",
            "DELETE FROM escrow_ledgerentry WHERE id = (SELECT MIN(id) FROM escrow_ledgerentry "
            "WHERE transaction_id = %s)",
        ),
    ],
)
def test_changing_a_sealed_row_in_the_database_is_found_and_named(accounts, what, sql):
    ids = post_holds(accounts, 30)
    ledger_seal(batch_size=10)
    victim = ids[14]  # in the second checkpoint

    tamper(sql, [victim])

    problems = checkpoints_verify()
    assert problems == [f"Checkpoint 2: sealed transactions changed since they were sealed: {victim}"], what


def test_an_account_renamed_under_sealed_entries_is_named(accounts):
    ids = post_holds(accounts, 3)
    ledger_seal()
    tamper("UPDATE escrow_ledgeraccount SET code = 'campaign:2:escrow' WHERE code = 'campaign:1:escrow'", [])
    assert checkpoints_verify() == [
        f"Checkpoint 1: sealed transactions changed since they were sealed: {', '.join(map(str, ids))}"
    ]


def test_a_sealed_transaction_removed_is_found(accounts):
    ids = post_holds(accounts, 4)
    ledger_seal()
    tamper("DELETE FROM escrow_ledgerentry WHERE transaction_id = %s", [ids[1]])
    tamper("DELETE FROM escrow_ledgertransaction WHERE id = %s", [ids[1]])
    assert LedgerEntry.objects.filter(transaction_id=ids[1]).count() == 0
    assert checkpoints_verify() == [
        f"Checkpoint 1 sealed 4 transactions (transactions 1 to {ids[-1]}), the ledger now has 3 there: "
        "sealed transactions were added or removed"
    ]


def test_a_rewritten_checkpoint_is_named(accounts):
    post_holds(accounts, 10)
    ledger_seal(batch_size=5)
    first = LedgerCheckpoint.objects.get(sequence=1)
    tamper("UPDATE escrow_ledgercheckpoint SET hash = %s WHERE sequence = 1", ["f" * 64])
    problems = checkpoints_verify()
    assert "Checkpoint 1: its hash does not match the transactions" in problems[0]
    assert problems[1] == "Checkpoint 2 does not follow checkpoint 1 in the chain"
    assert first.hash != "f" * 64


def test_digests_are_the_sha256_of_the_canonical_text_on_every_database(accounts):
    """On PostgreSQL the database builds the text; it must be byte for byte what Python builds."""
    ids = post_holds(accounts, 2)
    fee = ledger_post(
        posting=Posting(
            kind=TransactionKind.FEE,
            idempotency_key="fee:campaign:1",
            reference="campaign:1",
            currency="USD",
            legs=[(accounts["campaign:1:escrow"], -5), (accounts["backer:1:funding"], 5)],
            description="5 % of ¥1,000 — 支持者; 3:x;E",  # non-ASCII, and text that looks like fields
        )
    )
    expected = []
    for txn in LedgerTransaction.objects.filter(pk__in=[*ids, fee.pk]).order_by("pk"):
        micros = (txn.created_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        header = (txn.pk, txn.kind, txn.idempotency_key, txn.reference, txn.description, micros)
        entries = [(e.pk, e.account.code, e.amount, e.currency) for e in txn.entries.order_by("pk")]
        expected.append((txn.pk, hashlib.sha256(canonical_transaction(header, entries)).digest()))

    assert transaction_digests(after_id=0, up_to_id=fee.pk) == expected
    assert transaction_digests(after_id=ids[0], up_to_id=ids[1]) == expected[1:2]


def test_the_canonical_text_cannot_be_confused_by_what_fields_contain():
    one = canonical_transaction((1, "hold", "a;", "b", "", 0), [])
    other = canonical_transaction((1, "hold", "a", ";b", "", 0), [])
    assert one != other
    assert canonical_transaction((7, "fee", "k", "r", "d", 5), [(9, "c", -3, "USD")]) == (
        b"T1:7;3:fee;1:k;1:r;1:d;1:5;E1:9;1:c;2:-3;3:USD;"
    )

"""Tamper-evident ledger: seal committed transactions into chained checkpoints, and check them.

Each transaction (its id, kind, idempotency key, reference, description, created time and every
entry's id, account code, amount and currency) has a canonical serialisation
(``canonical_transaction``), whose SHA-256 is its digest. A checkpoint covers the transactions after the previous
checkpoint, in id order, and its hash is the SHA-256 of the previous hash and their digests: a
later change to any sealed row, an entry added to a sealed transaction or a transaction slipped
into a sealed range changes the recomputed hash of its checkpoint. The newest hash is shown on
every campaign's money page, so a ledger rewritten together with its checkpoints no longer
matches what was published.

Sealing runs off the pledge path (a beat task) and never locks ledger rows: postings go on while
it reads. Its only lock is its own, so that two workers never seal at the same time.
"""

import hashlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max

from .models import LedgerCheckpoint, LedgerTransaction

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 10_000
# Bytes of each transaction's digest kept on its checkpoint, to name the transaction that changed.
DIGEST_PREFIX_BYTES = 8
_HASH_DOMAIN = b"crowdfund-ledger-checkpoint-v1\n"
# Any constant will do, as long as nothing else takes it: sealing's own advisory lock.
_SEAL_LOCK_KEY = 0x6C656467_65727331
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ROW_FIELDS = (
    "id",
    "kind",
    "idempotency_key",
    "reference",
    "description",
    "created_at",
    "entries__id",
    "entries__account__code",
    "entries__amount",
    "entries__currency",
)
SHOW = 10  # transactions named per problem


def transaction_digests(*, after_id: int, up_to_id: int) -> list[tuple[int, bytes]]:
    """Return (id, SHA-256 digest) of every transaction with ``after_id < id <= up_to_id``, in id order.

    The caller bounds the range, and so the memory. On PostgreSQL the database serialises and
    hashes (``_digests_sql``); elsewhere Python does the same from the rows (``canonical_transaction``).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_digests_sql(), [after_id, up_to_id, after_id, up_to_id])
            return [(txn_id, bytes(digest)) for txn_id, digest in cursor.fetchall()]
    return list(_digests_python(after_id=after_id, up_to_id=up_to_id))


def _field(value) -> str:
    text = str(value)
    return f"{len(text)}:{text};"


def canonical_transaction(header: tuple, entries: list[tuple]) -> bytes:
    """Return the canonical serialisation of a transaction, the bytes its digest is taken of.

    ``header`` is (id, kind, idempotency key, reference, description, created time in microseconds
    since the epoch), each entry (id, account code, amount, currency), entries in id order. Every
    field is written as ``<length>:<text>;`` (the length in characters), so no text can pass for
    another field, whatever it contains.
    """
    parts = ["T", *map(_field, header)]
    for entry in entries:
        parts += ["E", *map(_field, entry)]
    return "".join(parts).encode()


def _digests_python(*, after_id: int, up_to_id: int) -> Iterator[tuple[int, bytes]]:
    rows = (
        LedgerTransaction.objects.filter(pk__gt=after_id, pk__lte=up_to_id)
        .order_by("pk", "entries__id")
        .values_list(*_ROW_FIELDS)
    )
    current = None
    entries: list = []
    for txn_id, kind, key, reference, description, created_at, entry_id, code, amount, currency in rows:
        if current is None or current[0] != txn_id:
            if current is not None:
                yield current[0], hashlib.sha256(canonical_transaction(current, entries)).digest()
            current = (txn_id, kind, key, reference, description, (created_at - _EPOCH) // _MICROSECOND)
            entries = []
        if entry_id is not None:
            entries.append((entry_id, code, amount, currency))
    if current is not None:
        yield current[0], hashlib.sha256(canonical_transaction(current, entries)).digest()


def _sql_field(expression: str) -> str:
    return f"length(({expression})::text)::text || ':' || ({expression})::text || ';'"


def _digests_sql() -> str:
    """Return the PostgreSQL query of ``_digests_python``: the same bytes, hashed by the database.

    Hand-written because the ORM's rows cost more to read than to hash: Django's timestamptz
    loader and one row per entry made sealing 1,000,000 transactions several times slower than
    its budget (benchmarks/README.md). The ORM query it replaces is ``_digests_python``'s;
    tests hold the two to the same digests. EXTRACT gives an exact numeric on PostgreSQL >= 14.
    """
    entry = "'E' || " + " || ".join(_sql_field(c) for c in ("e.id", "a.code", "e.amount", "e.currency"))
    header = "'T' || " + " || ".join(
        _sql_field(c)
        for c in (
            "t.id",
            "t.kind",
            "t.idempotency_key",
            "t.reference",
            "t.description",
            "(EXTRACT(EPOCH FROM t.created_at) * 1000000)::bigint",
        )
    )
    return f"""
        WITH entries AS (
            SELECT e.transaction_id, string_agg({entry}, '' ORDER BY e.id) AS text
            FROM escrow_ledgerentry e JOIN escrow_ledgeraccount a ON a.id = e.account_id
            WHERE e.transaction_id > %s AND e.transaction_id <= %s
            GROUP BY e.transaction_id
        )
        SELECT t.id, sha256(convert_to({header} || COALESCE(entries.text, ''), 'UTF8'))
        FROM escrow_ledgertransaction t LEFT JOIN entries ON entries.transaction_id = t.id
        WHERE t.id > %s AND t.id <= %s
        ORDER BY t.id
    """  # noqa: S608 - built from the constant column names above; the ids are parameters


def checkpoint_hash(*, previous_hash: str, digests: list[bytes]) -> str:
    """Return the hex hash of a checkpoint over ``digests`` chained to ``previous_hash``."""
    chained = hashlib.sha256(_HASH_DOMAIN + previous_hash.encode())
    chained.update(b"".join(digests))
    return chained.hexdigest()


def ledger_seal(*, batch_size: int = DEFAULT_BATCH_SIZE, max_checkpoints: int | None = None, wait_seconds=10.0) -> int:
    """Seal committed transactions not sealed yet, ``batch_size`` per checkpoint; return how many were sealed.

    Each checkpoint is its own database transaction, so a worker killed at any point leaves the
    chain whole and the next run goes on from its last checkpoint. Runs at the same time take
    turns: one holds the sealing lock (an advisory lock on PostgreSQL; SQLite has one writer at a
    time) and the others return at once, so no transaction is sealed twice or skipped; the unique
    sequence and range keep the chain from forking even so. Only transactions that can no longer
    be joined by a lower id are sealed (``_sealable_up_to``). Idempotent: with nothing new it
    writes nothing.
    """
    up_to = _sealable_up_to(wait_seconds=wait_seconds)
    sealed = made = 0
    while up_to is not None and (max_checkpoints is None or made < max_checkpoints):
        count = _seal_next(batch_size=batch_size, up_to=up_to)
        if not count:
            break
        sealed += count
        made += 1
    return sealed


def _sealable_up_to(*, wait_seconds: float) -> int | None:
    """Return the highest transaction id that no transaction still running can come in below.

    Ids are handed out before commit, so a posting still in flight can commit an id lower than
    one already visible. On PostgreSQL this reads the highest id handed out so far, then waits
    for every transaction writing in this database at that moment to end: after that, every id
    up to it is committed or never will be. It returns None (seal nothing this time) if they
    take longer than ``wait_seconds``. SQLite has one writer at a time, and sealing is a write:
    inside its transaction every id handed out is committed (the highest id is read there).
    """
    if connection.vendor != "postgresql":
        return 2**63 - 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')), 0)",
            [LedgerTransaction._meta.db_table],
        )
        handed_out = cursor.fetchone()[0]
        in_flight_sql = (
            "SELECT array_agg(backend_xid::text) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        )
        cursor.execute(in_flight_sql)
        writing = cursor.fetchone()[0] or []
        give_up = time.monotonic() + wait_seconds
        while writing:
            cursor.execute(in_flight_sql.replace("IS NOT NULL", "= ANY(%s::xid[])"), [writing])
            writing = cursor.fetchone()[0] or []
            if writing and time.monotonic() > give_up:
                logger.warning("Ledger sealing waits for %d transaction(s) still writing; next run", len(writing))
                return None
            if writing:
                time.sleep(0.05)
    return handed_out


def _seal_lock_taken() -> bool:
    if connection.vendor != "postgresql":
        return True  # the transaction holds SQLite's one write lock
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEAL_LOCK_KEY])
        return cursor.fetchone()[0]


def checkpoint_latest() -> LedgerCheckpoint | None:
    """Return the newest checkpoint (without its digests), or None before the first."""
    return LedgerCheckpoint.objects.defer("digests").order_by("-sequence").first()


def _seal_next(*, batch_size: int, up_to: int) -> int:
    with transaction.atomic(durable=True):
        if not _seal_lock_taken():
            return 0  # another worker is sealing
        last = checkpoint_latest()
        after = last.last_transaction_id if last else 0
        pending = LedgerTransaction.objects.filter(pk__gt=after, pk__lte=up_to).order_by("pk")
        boundary = pending.values_list("pk", flat=True)[batch_size - 1 : batch_size].first()
        if boundary is None:
            boundary = pending.aggregate(last=Max("pk"))["last"]
            if boundary is None:
                return 0
        ids, digests = [], []
        for txn_id, digest in transaction_digests(after_id=after, up_to_id=boundary):
            ids.append(txn_id)
            digests.append(digest)
        previous_hash = last.hash if last else ""
        LedgerCheckpoint.objects.create(
            sequence=(last.sequence if last else 0) + 1,
            previous_hash=previous_hash,
            first_transaction_id=ids[0],
            last_transaction_id=ids[-1],
            transaction_count=len(ids),
            sealed_total=(last.sealed_total if last else 0) + len(ids),
            digests=b"".join(d[:DIGEST_PREFIX_BYTES] for d in digests),
            hash=checkpoint_hash(previous_hash=previous_hash, digests=digests),
        )
    return len(ids)


def checkpoints_verify() -> list[str]:
    """Recompute every checkpoint from the rows it sealed; return each mismatch naming what changed.

    Reads one checkpoint's transactions at a time. A changed row is named by its transaction id;
    a row added or removed inside a sealed range, a broken chain or an altered checkpoint names
    the checkpoint.
    """
    problems: list[str] = []
    previous: LedgerCheckpoint | None = None
    for checkpoint in LedgerCheckpoint.objects.order_by("sequence").iterator(chunk_size=20):
        problems += _checkpoint_verify(checkpoint, previous)
        previous = checkpoint
    return problems


def _checkpoint_verify(checkpoint: LedgerCheckpoint, previous: LedgerCheckpoint | None) -> list[str]:
    name = f"Checkpoint {checkpoint.sequence}"
    problems = []
    expected_sequence = previous.sequence + 1 if previous else 1
    expected_previous_hash = previous.hash if previous else ""
    if checkpoint.sequence != expected_sequence or checkpoint.previous_hash != expected_previous_hash:
        problems.append(f"{name} does not follow checkpoint {expected_sequence - 1} in the chain")
    after = previous.last_transaction_id if previous else 0
    rows = list(transaction_digests(after_id=after, up_to_id=checkpoint.last_transaction_id))
    digests = [digest for _, digest in rows]
    matches = checkpoint_hash(previous_hash=checkpoint.previous_hash, digests=digests) == checkpoint.hash
    stored = bytes(checkpoint.digests)
    stored = [stored[i : i + DIGEST_PREFIX_BYTES] for i in range(0, len(stored), DIGEST_PREFIX_BYTES)]
    span = f"transactions {after + 1} to {checkpoint.last_transaction_id}"
    if len(rows) != checkpoint.transaction_count or (rows and rows[0][0] != checkpoint.first_transaction_id):
        problems.append(
            f"{name} sealed {checkpoint.transaction_count} transactions ({span}), the ledger now has "
            f"{len(rows)} there: sealed transactions were added or removed"
        )
    elif not matches:
        changed = [
            txn_id for (txn_id, digest), kept in zip(rows, stored, strict=False) if digest[:DIGEST_PREFIX_BYTES] != kept
        ]
        if changed:
            shown = ", ".join(str(txn_id) for txn_id in changed[:SHOW]) + (", ..." if len(changed) > SHOW else "")
            problems.append(f"{name}: sealed transactions changed since they were sealed: {shown}")
        else:
            problems.append(f"{name}: its hash does not match the {span} it sealed")
    elif stored != [digest[:DIGEST_PREFIX_BYTES] for digest in digests]:
        problems.append(f"{name}: its stored transaction digests were altered")
    return problems

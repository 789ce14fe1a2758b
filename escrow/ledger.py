"""Ledger services: post balanced transactions exactly once, read balances.

A posting moves money between accounts as legs (account, signed amount) that sum to zero.
Each posting has an idempotency key derived from what it is for ("refund:pledge:42"); posting
the same key again returns the first transaction and writes nothing.
"""

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field, replace

from django.core.cache import cache
from django.db import connections, router, transaction
from django.db.models import F, Sum
from django.utils import timezone

from crowdfund_site.bulk import AnyOf, insert_rows, server_bound_cursor

from .models import LedgerAccount, LedgerEntry, LedgerTransaction


class LedgerError(Exception):
    """A posting that would break double entry (unbalanced, mixed currencies, zero legs)."""


@dataclass(frozen=True)
class Posting:
    kind: str
    idempotency_key: str
    reference: str
    currency: str
    legs: list[tuple[LedgerAccount, int]] = field(default_factory=list)
    description: str = ""


def _check_posting(posting: Posting) -> None:
    if len(posting.legs) < 2:
        raise LedgerError(f"{posting.idempotency_key}: a transaction needs at least two entries")
    for account, amount in posting.legs:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
            raise LedgerError(f"{posting.idempotency_key}: entry amounts are non-zero integers")
        if account.currency != posting.currency:
            raise LedgerError(
                f"{posting.idempotency_key}: account {account.code} holds {account.currency}, not {posting.currency}"
            )
    if sum(amount for _, amount in posting.legs) != 0:
        raise LedgerError(f"{posting.idempotency_key}: entries do not sum to zero")


def ledger_accounts_get_or_create(*, specs: list[tuple[str, str]], currency: str) -> dict[str, LedgerAccount]:
    """Return {code: account} for (code, kind) pairs in ``currency``, creating missing ones.

    Safe under concurrency: a racing creator's row is picked up instead of failing.
    """
    wanted = dict(specs)
    accounts = {a.code: a for a in LedgerAccount.objects.filter(AnyOf(F("code"), list(wanted)), currency=currency)}
    missing = [code for code in wanted if code not in accounts]
    if missing:
        LedgerAccount.objects.bulk_create(
            [LedgerAccount(code=code, kind=wanted[code], currency=currency) for code in missing],
            ignore_conflicts=True,
        )
        accounts.update({a.code: a for a in LedgerAccount.objects.filter(AnyOf(F("code"), missing), currency=currency)})
    return accounts


# Account ids never change, so any process may reuse one it (or another process) looked up.
ACCOUNT_IDS_CACHE_SECONDS = 24 * 3600


def _account_cache_key(code: str, currency: str) -> str:
    return f"ledger-account:{currency}:{code}"


def ledger_accounts_get_or_create_cached(*, specs: list[tuple[str, str]], currency: str) -> dict[str, LedgerAccount]:
    """Return {code: account} as ``ledger_accounts_get_or_create``, reusing ids already looked up.

    Only for legs of ``ledger_post``, which checks every id against its code and currency in the
    statement that posts it and looks a stale one up again (an account whose creation rolled
    back, a test database emptied), so a wrong id can never reach an entry. The ids are shared
    through the cache (``CACHE_URL``) by every process. On databases where ``ledger_post``
    cannot check them in the same statement (SQLite), this is ``ledger_accounts_get_or_create``.
    """
    if connections[router.db_for_write(LedgerAccount)].vendor != "postgresql":
        return ledger_accounts_get_or_create(specs=specs, currency=currency)
    wanted = dict(specs)
    keys = {_account_cache_key(code, currency): code for code in wanted}
    try:
        known = cache.get_many(list(keys))
    except Exception:
        known = {}
    accounts = {}
    for key, account_id in known.items():
        code = keys[key]
        accounts[code] = LedgerAccount(pk=account_id, code=code, kind=wanted[code], currency=currency)
        accounts[code]._state.adding = False
    missing = [(code, kind) for code, kind in wanted.items() if code not in accounts]
    if missing:
        found = ledger_accounts_get_or_create(specs=missing, currency=currency)
        accounts.update(found)
        with contextlib.suppress(Exception):  # a hint not kept is looked up next time
            cache.set_many(
                {_account_cache_key(code, currency): a.pk for code, a in found.items()}, ACCOUNT_IDS_CACHE_SECONDS
            )
    return accounts


def _accounts_forget(*, accounts: list[LedgerAccount]) -> None:
    with contextlib.suppress(Exception):  # ledger_post checks every id it is given anyway
        cache.delete_many([_account_cache_key(a.code, a.currency) for a in accounts])


def ledger_account_get_or_create(*, code: str, kind: str, currency: str) -> LedgerAccount:
    """Return the account ``code`` in ``currency``, creating it if needed."""
    return ledger_accounts_get_or_create(specs=[(code, kind)], currency=currency)[code]


def ledger_post(*, posting: Posting) -> LedgerTransaction:
    """Post one balanced transaction and return it; a repeated key returns the first one.

    The header and its entries are written in one database transaction (the caller's, if
    there is one), so a process killed between them leaves nothing behind and a retry posts
    the whole transaction. On PostgreSQL they are one statement, which also checks each leg's
    account id against its code and currency (ids from ``ledger_accounts_get_or_create_cached``
    may be stale). Raises LedgerError for an unbalanced posting, or for a key already used for a
    different movement of money.
    """
    _check_posting(posting)
    created_at = timezone.now()
    connection = connections[router.db_for_write(LedgerTransaction)]
    # No savepoint: nested in a caller's transaction, a failed INSERT fails that transaction,
    # which is what must happen to a money write that is half done.
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            txn_id = _post_in_one_statement(connection, posting, created_at)
            if txn_id is _STALE_ACCOUNTS:
                # Nothing was written: look the accounts up again and post with their real ids.
                legs = [account for account, _ in posting.legs]
                _accounts_forget(accounts=legs)
                fresh = ledger_accounts_get_or_create(specs=[(a.code, a.kind) for a in legs], currency=posting.currency)
                posting = replace(posting, legs=[(fresh[account.code], amount) for account, amount in posting.legs])
                txn_id = _post_in_one_statement(connection, posting, created_at)
        else:
            txn_id = _post_in_two_statements(posting, created_at)
        if txn_id is not None:
            txn = LedgerTransaction(
                pk=txn_id,
                kind=posting.kind,
                idempotency_key=posting.idempotency_key,
                reference=posting.reference,
                description=posting.description,
                created_at=created_at,
            )
            txn._state.adding = False
            return txn
    existing = LedgerTransaction.objects.get(idempotency_key=posting.idempotency_key)
    _ensure_same_posting(existing, posting)
    return existing


_STALE_ACCOUNTS = object()

# The transaction and its entries in one round trip (PostgreSQL's data-modifying WITH). Each leg's
# account id is joined to its code and currency, and the transaction row is only written when every
# leg matched, so an id reused from ledger_accounts_get_or_create_cached that is no longer right
# writes nothing. The ORM equivalent is two statements after a lookup:
#   LedgerTransaction.objects.create(...); LedgerEntry.objects.bulk_create([...]) (skipping a key
#   already posted), with the accounts read by LedgerAccount.objects.filter(code__in=..., currency=...).
_POST_SQL = """
WITH legs AS (
    SELECT account.id AS account_id, leg.amount, leg.position
      FROM unnest(%(account_ids)s::bigint[], %(codes)s::varchar[], %(amounts)s::bigint[])
           WITH ORDINALITY AS leg (account_id, code, amount, position)
      JOIN {account} AS account
        ON account.id = leg.account_id AND account.code = leg.code AND account.currency = %(currency)s
), txn AS (
    INSERT INTO {transaction} (kind, idempotency_key, reference, description, created_at)
    SELECT %(kind)s, %(key)s, %(reference)s, %(description)s, %(created_at)s
     WHERE (SELECT count(*) FROM legs) = %(leg_count)s
        ON CONFLICT DO NOTHING
    RETURNING id
), entries AS (
    INSERT INTO {entry} (transaction_id, account_id, amount, currency)
    SELECT txn.id, legs.account_id, legs.amount, %(currency)s FROM txn, legs ORDER BY legs.position
)
SELECT (SELECT count(*) FROM legs), (SELECT id FROM txn)
"""


def _post_in_one_statement(connection, posting: Posting, created_at):
    """Post on PostgreSQL; return the new transaction's id, None if the key was posted, or _STALE_ACCOUNTS."""
    quote = connection.ops.quote_name
    sql = _POST_SQL.format(
        account=quote(LedgerAccount._meta.db_table),
        transaction=quote(LedgerTransaction._meta.db_table),
        entry=quote(LedgerEntry._meta.db_table),
    )
    params = {
        "account_ids": [account.pk for account, _ in posting.legs],
        "codes": [account.code for account, _ in posting.legs],
        "amounts": [amount for _, amount in posting.legs],
        "currency": posting.currency,
        "kind": posting.kind,
        "key": posting.idempotency_key,
        "reference": posting.reference,
        "description": posting.description,
        "created_at": created_at,
        "leg_count": len(posting.legs),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        matched, txn_id = cursor.fetchone()
    if matched != len(posting.legs):
        return _STALE_ACCOUNTS
    return txn_id


def _post_in_two_statements(posting: Posting, created_at) -> int | None:
    """Post elsewhere: insert the header first, skipping a key already posted, then its entries."""
    inserted = insert_rows(
        model=LedgerTransaction,
        fields=["kind", "idempotency_key", "reference", "description", "created_at"],
        rows=[(posting.kind, posting.idempotency_key, posting.reference, posting.description, created_at)],
        returning_ids=True,
        skip_conflicts=True,
    )
    if not inserted:
        return None
    insert_rows(
        model=LedgerEntry,
        fields=["transaction_id", "account_id", "amount", "currency"],
        rows=[(inserted[0], account.pk, amount, posting.currency) for account, amount in posting.legs],
    )
    return inserted[0]


def _ensure_same_posting(existing: LedgerTransaction, posting: Posting) -> None:
    recorded = sorted(existing.entries.values_list("account_id", "amount"))
    asked = sorted((account.pk, amount) for account, amount in posting.legs)
    if existing.kind != posting.kind or recorded != asked:
        raise LedgerError(f"Idempotency key {posting.idempotency_key!r} was already used for a different transaction")


def ledger_post_many(*, postings: list[Posting]) -> int:
    """Post many balanced transactions at once; return how many were new.

    All of the batch is written in one database transaction (the caller's, if there is one).
    Keys already posted are skipped, so a batch that is replayed after a crash posts only what
    is missing. Callers must make sure no one else posts the same keys concurrently (settlement
    holds the pledge row locks). On PostgreSQL the headers and all their entries are one
    statement; elsewhere three (the keys already posted, the headers, the entries). Raises
    LedgerError for an unbalanced posting or a key given twice in the batch, writing nothing.
    """
    for posting in postings:
        _check_posting(posting)
    keys = [p.idempotency_key for p in postings]
    if len(set(keys)) != len(keys):
        raise LedgerError("a batch names the same idempotency key twice")
    if not postings:
        return 0
    connection = connections[router.db_for_write(LedgerTransaction)]
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            return _post_many_in_one_statement(connection, postings)
        return _post_fresh(postings)


# Every header and entry of a batch in one round trip: the headers go in, skipping keys already
# posted (ON CONFLICT), and only the entries of headers that went in follow them, joined by key.
# The ORM equivalent is _post_fresh's three statements. Keys are unique within a batch (checked
# before), so no header's entries can be joined twice.
_POST_MANY_SQL = """
WITH head AS (
    SELECT * FROM unnest(%(kinds)b::varchar[], %(keys)b::varchar[], %(references)b::varchar[],
                         %(descriptions)b::varchar[])
           WITH ORDINALITY AS head (kind, key, reference, description, position)
), txn AS (
    INSERT INTO {transaction} (kind, idempotency_key, reference, description, created_at)
    SELECT kind, key, reference, description, %(created_at)b FROM head ORDER BY position
        ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, idempotency_key
), entries AS (
    INSERT INTO {entry} (transaction_id, account_id, amount, currency)
    SELECT txn.id, leg.account_id, leg.amount, leg.currency
      FROM unnest(%(leg_heads)b::bigint[], %(account_ids)b::bigint[], %(amounts)b::bigint[],
                  %(currencies)b::varchar[])
           WITH ORDINALITY AS leg (head, account_id, amount, currency, position)
      JOIN head ON head.position = leg.head
      JOIN txn ON txn.idempotency_key = head.key
     ORDER BY leg.position
)
SELECT count(*) FROM txn
"""


def _post_many_in_one_statement(connection, postings: list[Posting]) -> int:
    quote = connection.ops.quote_name
    sql = _POST_MANY_SQL.format(
        transaction=quote(LedgerTransaction._meta.db_table), entry=quote(LedgerEntry._meta.db_table)
    )
    leg_heads, account_ids, amounts, currencies = [], [], [], []
    for position, posting in enumerate(postings, start=1):
        for account, amount in posting.legs:
            leg_heads.append(position)
            account_ids.append(account.pk)
            amounts.append(amount)
            currencies.append(posting.currency)
    params = {
        "kinds": [p.kind for p in postings],
        "keys": [p.idempotency_key for p in postings],
        "references": [p.reference for p in postings],
        "descriptions": [p.description for p in postings],
        "created_at": timezone.now(),
        "leg_heads": leg_heads,
        "account_ids": account_ids,
        "amounts": amounts,
        "currencies": currencies,
    }
    # Bound server-side: the arrays go as binary, not quoted into the SQL text.
    with server_bound_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _post_fresh(postings: list[Posting]) -> int:
    keys = [p.idempotency_key for p in postings]
    posted = LedgerTransaction.objects.filter(AnyOf(F("idempotency_key"), keys))
    already = set(posted.values_list("idempotency_key", flat=True))
    fresh = [p for p in postings if p.idempotency_key not in already]
    if not fresh:
        return 0
    now = timezone.now()
    txn_ids = insert_rows(
        model=LedgerTransaction,
        fields=["kind", "idempotency_key", "reference", "description", "created_at"],
        rows=[(p.kind, p.idempotency_key, p.reference, p.description, now) for p in fresh],
        returning_ids=True,
    )
    insert_rows(
        model=LedgerEntry,
        fields=["transaction", "account", "amount", "currency"],
        rows=[
            (txn_id, account.pk, amount, p.currency)
            for txn_id, p in zip(txn_ids, fresh, strict=True)
            for account, amount in p.legs
        ],
    )
    return len(fresh)


def ledger_account_lock(*, code: str, currency: str) -> LedgerAccount | None:
    """Lock the account ``code`` in ``currency`` and return it; None if it does not exist.

    For balances that must never go below zero: every writer that takes from the account, or
    turns what is reserved on it into entries, holds this lock, so a reader under it sees the
    balance and the reservations of one moment. Call inside a transaction.

    ``FOR NO KEY UPDATE`` (``no_key``): it excludes the other holders of this lock, but not the
    key-share locks that inserting entries on the account takes, so money paid in meanwhile (a
    repayment to a lender) neither waits for it nor can deadlock with it.
    """
    return LedgerAccount.objects.select_for_update(no_key=True).filter(code=code, currency=currency).first()


def account_balance(*, account: LedgerAccount) -> int:
    """Return the account's balance: the sum of its entries."""
    return LedgerEntry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"] or 0


def account_balances(*, codes: list[str] | None = None) -> dict[tuple[str, str], int]:
    """Return {(code, currency): balance} for the given account codes (all accounts if None)."""
    entries = LedgerEntry.objects.all()
    if codes is not None:
        entries = entries.filter(account__code__in=codes)
    balances: dict[tuple[str, str], int] = defaultdict(int)
    for code, currency, total in entries.values_list("account__code", "account__currency").annotate(
        total=Sum("amount")
    ):
        balances[(code, currency)] += total
    return dict(balances)

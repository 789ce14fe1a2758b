import pytest
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from escrow.ledger import (
    LedgerError,
    Posting,
    _account_cache_key,
    account_balance,
    account_balances,
    ledger_account_get_or_create,
    ledger_accounts_get_or_create,
    ledger_accounts_get_or_create_cached,
    ledger_post,
    ledger_post_many,
)
from escrow.models import AccountKind, LedgerEntry, LedgerImmutableError, LedgerTransaction, TransactionKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts():
    """A backer's card, a campaign's escrow and a payee, in USD; plus a EUR escrow."""
    usd = ledger_accounts_get_or_create(
        specs=[
            ("backer:1:funding", AccountKind.FUNDING_SOURCE),
            ("campaign:1:escrow", AccountKind.ESCROW),
            ("campaign:1:payable", AccountKind.PAYABLE),
        ],
        currency="USD",
    )
    usd["eur_escrow"] = ledger_account_get_or_create(code="campaign:2:escrow", kind=AccountKind.ESCROW, currency="EUR")
    return usd


def hold(accounts, *, key="hold:pledge:1", amount=2_500) -> Posting:
    return Posting(
        kind=TransactionKind.HOLD,
        idempotency_key=key,
        reference="pledge:1",
        currency="USD",
        legs=[(accounts["backer:1:funding"], -amount), (accounts["campaign:1:escrow"], amount)],
    )


def rows() -> tuple[int, int]:
    return LedgerTransaction.objects.count(), LedgerEntry.objects.count()


def test_a_balanced_posting_moves_money_between_accounts(accounts):
    txn = ledger_post(posting=hold(accounts))
    assert (txn.kind, txn.reference) == (TransactionKind.HOLD, "pledge:1")
    assert sorted(txn.entries.values_list("amount", flat=True)) == [-2_500, 2_500]
    assert account_balance(account=accounts["campaign:1:escrow"]) == 2_500
    assert account_balances() == {("backer:1:funding", "USD"): -2_500, ("campaign:1:escrow", "USD"): 2_500}


def test_a_posting_may_split_across_several_accounts(accounts):
    ledger_post(
        posting=Posting(
            kind=TransactionKind.RELEASE,
            idempotency_key="split",
            reference="campaign:1",
            currency="USD",
            legs=[
                (accounts["backer:1:funding"], -1_000),
                (accounts["campaign:1:escrow"], 400),
                (accounts["campaign:1:payable"], 600),
            ],
        )
    )
    assert account_balances(codes=["campaign:1:escrow", "campaign:1:payable"]) == {
        ("campaign:1:escrow", "USD"): 400,
        ("campaign:1:payable", "USD"): 600,
    }


@pytest.mark.parametrize(
    "legs",
    [
        pytest.param(lambda a: [(a["campaign:1:escrow"], 100)], id="one leg"),
        pytest.param(lambda a: [], id="no legs"),
        pytest.param(lambda a: [(a["backer:1:funding"], -100), (a["campaign:1:escrow"], 99)], id="unbalanced"),
        pytest.param(lambda a: [(a["backer:1:funding"], 0), (a["campaign:1:escrow"], 0)], id="zero legs"),
        pytest.param(lambda a: [(a["backer:1:funding"], -1.5), (a["campaign:1:escrow"], 1.5)], id="float"),
        pytest.param(lambda a: [(a["backer:1:funding"], -True), (a["campaign:1:escrow"], True)], id="bool"),
        pytest.param(lambda a: [(a["backer:1:funding"], -100), (a["eur_escrow"], 100)], id="mixed currencies"),
    ],
)
def test_postings_that_break_double_entry_are_refused_and_write_nothing(accounts, legs):
    posting = Posting(
        kind=TransactionKind.HOLD, idempotency_key="bad", reference="x", currency="USD", legs=legs(accounts)
    )
    with pytest.raises(LedgerError):
        ledger_post(posting=posting)
    with pytest.raises(LedgerError):
        ledger_post_many(postings=[hold(accounts, key="fine"), posting])
    assert rows() == (0, 0)


def test_posting_the_same_key_again_returns_the_first_transaction(accounts):
    first = ledger_post(posting=hold(accounts))
    again = ledger_post(posting=hold(accounts))
    assert again.pk == first.pk
    assert rows() == (1, 2)
    assert account_balance(account=accounts["campaign:1:escrow"]) == 2_500


@pytest.mark.parametrize(
    "different",
    [
        pytest.param(lambda a: hold(a, amount=2_501), id="amount"),
        pytest.param(
            lambda a: Posting(
                kind=TransactionKind.REFUND,
                idempotency_key="hold:pledge:1",
                reference="pledge:1",
                currency="USD",
                legs=[(a["backer:1:funding"], -2_500), (a["campaign:1:escrow"], 2_500)],
            ),
            id="kind",
        ),
        pytest.param(
            lambda a: Posting(
                kind=TransactionKind.HOLD,
                idempotency_key="hold:pledge:1",
                reference="pledge:1",
                currency="USD",
                legs=[(a["backer:1:funding"], -2_500), (a["campaign:1:payable"], 2_500)],
            ),
            id="accounts",
        ),
    ],
)
def test_a_key_reused_for_a_different_movement_is_refused(accounts, different):
    ledger_post(posting=hold(accounts))
    with pytest.raises(LedgerError, match="already used"):
        ledger_post(posting=different(accounts))
    assert rows() == (1, 2)


def test_post_many_writes_only_what_is_missing(accounts):
    ledger_post(posting=hold(accounts, key="k1"))
    new = ledger_post_many(postings=[hold(accounts, key=f"k{i}") for i in range(1, 4)])
    assert new == 2
    assert rows() == (3, 6)
    assert ledger_post_many(postings=[hold(accounts, key=f"k{i}") for i in range(1, 4)]) == 0
    assert rows() == (3, 6)
    assert account_balance(account=accounts["campaign:1:escrow"]) == 7_500


def test_post_many_writes_a_batch_in_a_fixed_number_of_statements(accounts):
    postings = [hold(accounts, key=f"k{i}", amount=100 + i) for i in range(1, 501)]
    with CaptureQueriesContext(connection) as queries:
        assert ledger_post_many(postings=postings) == 500
    statements = len([q for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))])
    # One statement on PostgreSQL; elsewhere the keys already posted, headers and entries, each
    # in as few chunks as the driver's parameter limit allows (not one per posting).
    assert statements == 1 if connection.vendor == "postgresql" else statements <= 12
    assert rows() == (500, 1_000)
    assert account_balance(account=accounts["campaign:1:escrow"]) == sum(100 + i for i in range(1, 501))
    txn = LedgerTransaction.objects.get(idempotency_key="k7")
    assert sorted(txn.entries.values_list("amount", flat=True)) == [-107, 107]


def test_post_many_refuses_a_key_given_twice_and_writes_nothing(accounts):
    with pytest.raises(LedgerError, match="twice"):
        ledger_post_many(postings=[hold(accounts, key="same"), hold(accounts, key="same")])
    assert rows() == (0, 0)


def test_post_many_is_all_or_nothing_inside_the_callers_transaction(accounts):
    def post_then_fail():
        with transaction.atomic():
            ledger_post_many(postings=[hold(accounts, key=f"k{i}") for i in range(1, 4)])
            raise RuntimeError("the caller fails after posting")

    with pytest.raises(RuntimeError):
        post_then_fail()
    assert rows() == (0, 0)


def test_accounts_are_created_once_per_code_and_currency(accounts):
    again = ledger_accounts_get_or_create(specs=[("campaign:1:escrow", AccountKind.ESCROW)], currency="USD")
    assert again["campaign:1:escrow"].pk == accounts["campaign:1:escrow"].pk
    euro = ledger_account_get_or_create(code="campaign:1:escrow", kind=AccountKind.ESCROW, currency="EUR")
    assert euro.pk != accounts["campaign:1:escrow"].pk


# --- Append-only -------------------------------------------------------------------------------------


def test_ledger_rows_cannot_be_changed_or_removed_through_django(accounts):
    txn = ledger_post(posting=hold(accounts))
    entry = txn.entries.first()
    entry.amount = 1
    txn.description = "edited"
    attempts = [
        entry.save,
        txn.save,
        entry.delete,
        txn.delete,
        lambda: LedgerEntry.objects.filter(pk=entry.pk).update(amount=1),
        lambda: LedgerEntry.objects.all().delete(),
        lambda: LedgerTransaction.objects.filter(pk=txn.pk).update(description="edited"),
        lambda: LedgerTransaction.objects.all().delete(),
        lambda: LedgerEntry.objects.bulk_update([entry], ["amount"]),
    ]
    for attempt in attempts:
        with pytest.raises(LedgerImmutableError):
            attempt()
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [-2_500, 2_500]
    assert LedgerTransaction.objects.get().description == ""


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists only on PostgreSQL (SQLite has none)"
)
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE escrow_ledgerentry SET amount = 1 WHERE id = %s",
        "DELETE FROM escrow_ledgerentry WHERE id = %s",
        "UPDATE escrow_ledgertransaction SET description = 'edited' WHERE id = (SELECT transaction_id FROM "
        "escrow_ledgerentry WHERE id = %s)",
        "DELETE FROM escrow_ledgertransaction WHERE id = (SELECT transaction_id FROM escrow_ledgerentry WHERE id = %s)",
    ],
)
def test_postgresql_refuses_raw_sql_that_changes_the_ledger(accounts, sql):
    entry = ledger_post(posting=hold(accounts)).entries.first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [entry.pk])
    assert rows() == (1, 2)
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [-2_500, 2_500]
    assert LedgerTransaction.objects.get().description == ""


# --- Account ids reused across requests (ledger_accounts_get_or_create_cached) ------------------


SPECS = [("backer:1:funding", AccountKind.FUNDING_SOURCE), ("campaign:1:escrow", AccountKind.ESCROW)]


def test_cached_accounts_are_the_accounts_and_post_like_looked_up_ones(accounts):
    cache.clear()
    first = ledger_accounts_get_or_create_cached(specs=SPECS, currency="USD")
    again = ledger_accounts_get_or_create_cached(specs=SPECS, currency="USD")

    assert {code: a.pk for code, a in first.items()} == {code: a.pk for code, a in again.items()}
    assert {code: a.pk for code, a in again.items()} == {code: accounts[code].pk for code, _ in SPECS}
    ledger_post(posting=hold(again))
    assert account_balance(account=accounts["campaign:1:escrow"]) == 2_500


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ids are reused only where ledger_post checks them")
def test_a_stale_cached_id_is_never_posted_to(accounts):
    # As if the id were cached from an account whose creation rolled back, or from an emptied
    # database whose ids now name other accounts: here, the payable account's id for the escrow.
    cache.clear()
    ledger_accounts_get_or_create_cached(specs=SPECS, currency="USD")
    cache.set(_account_cache_key("campaign:1:escrow", "USD"), accounts["campaign:1:payable"].pk)
    stale = ledger_accounts_get_or_create_cached(specs=SPECS, currency="USD")
    assert stale["campaign:1:escrow"].pk == accounts["campaign:1:payable"].pk

    ledger_post(posting=hold(stale))

    assert account_balance(account=accounts["campaign:1:escrow"]) == 2_500
    assert account_balance(account=accounts["campaign:1:payable"]) == 0
    fixed = ledger_accounts_get_or_create_cached(specs=SPECS, currency="USD")
    assert fixed["campaign:1:escrow"].pk == accounts["campaign:1:escrow"].pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="one statement needs a data-modifying WITH")
def test_a_posting_is_one_statement_on_postgresql_and_a_repeat_writes_nothing(accounts):
    with CaptureQueriesContext(connection) as captured:
        first = ledger_post(posting=hold(accounts))
    assert len(captured.captured_queries) == 1
    assert sorted(first.entries.values_list("amount", flat=True)) == [-2_500, 2_500]

    again = ledger_post(posting=hold(accounts))

    assert again.pk == first.pk
    assert rows() == (1, 2)

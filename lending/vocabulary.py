"""The ledger names of loan money: idempotency keys, account codes, references, the posting builder.

Temporary home: these belong in ``escrow/vocabulary.py`` beside the campaign and pledge names
(issue 11), and move there once that module is on main. Nothing else in lending builds a key or
a code by hand.

- key: ``distribute:repayment:<id>``, the one transaction of a repayment;
- accounts: ``borrower:<user id>:funding`` (the borrower's card, seen from here),
  ``loan:<id>:clearing`` (passes each repayment through, zero after every transaction),
  ``lender:<user id>:balance`` (what the platform owes a lender until they withdraw),
  ``platform:revenue``;
- reference: ``loan:<id>``.
"""

from collections.abc import Mapping

from escrow.ledger import Posting
from escrow.models import AccountKind, LedgerAccount, TransactionKind

PLATFORM_REVENUE = "platform:revenue"  # the same account as the platform fee's
REPAYMENT_DISTRIBUTION_KEY_PREFIX = "distribute:repayment:"
_CLEARING_PREFIX, _CLEARING_SUFFIX = "loan:", ":clearing"


def repayment_distribution_key(repayment_id: int) -> str:
    """Return the key of the ledger transaction that splits a repayment."""
    return f"{REPAYMENT_DISTRIBUTION_KEY_PREFIX}{repayment_id}"


def loan_reference(loan_id: int) -> str:
    """Return the reference of a transaction about a loan."""
    return f"loan:{loan_id}"


def borrower_funding_code(borrower_id: int) -> str:
    """Return the account a borrower's repayments come from."""
    return f"borrower:{borrower_id}:funding"


def loan_clearing_code(loan_id: int) -> str:
    """Return the account each repayment of a loan passes through on its way to the lenders."""
    return f"{_CLEARING_PREFIX}{loan_id}{_CLEARING_SUFFIX}"


def lender_balance_code(lender_id: int) -> str:
    """Return the account of what the platform holds for a lender until they withdraw it."""
    return f"lender:{lender_id}:balance"


def loan_id_from_clearing_code(code: str) -> int | None:
    """Return the loan id of a loan clearing code, or None if ``code`` is not one."""
    middle = code[len(_CLEARING_PREFIX) : -len(_CLEARING_SUFFIX)] if is_loan_clearing_code(code) else ""
    return int(middle) if middle.isascii() and middle.isdigit() else None


def is_loan_clearing_code(code: str) -> bool:
    """Return whether ``code`` names a loan clearing account."""
    return code.startswith(_CLEARING_PREFIX) and code.endswith(_CLEARING_SUFFIX)


def loan_clearing_code_filter() -> dict[str, str]:
    """Return ORM lookups on a ledger account's ``code`` that match loan clearing accounts."""
    return {"code__startswith": _CLEARING_PREFIX, "code__endswith": _CLEARING_SUFFIX}


def repayment_account_specs(*, loan_id: int, borrower_id: int, lender_ids: list[int]) -> list[tuple[str, str]]:
    return [
        (borrower_funding_code(borrower_id), AccountKind.FUNDING_SOURCE),
        (loan_clearing_code(loan_id), AccountKind.ESCROW),
        (PLATFORM_REVENUE, AccountKind.REVENUE),
        *((lender_balance_code(lender_id), AccountKind.PAYABLE) for lender_id in lender_ids),
    ]


def repayment_posting(
    *,
    repayment_id: int,
    loan_id: int,
    borrower_id: int,
    amount: int,
    fee: int,
    payouts: list[tuple[int, int]],
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the one posting of a repayment: borrower -> loan clearing -> each lender, fee -> revenue.

    ``payouts`` are ``(lender id, amount)`` pairs with non-zero amounts summing to ``amount - fee``.
    The clearing account takes the whole amount and gives it all on, so it is zero afterwards.
    """
    clearing = accounts[loan_clearing_code(loan_id)]
    legs = [(accounts[borrower_funding_code(borrower_id)], -amount), (clearing, amount), (clearing, -amount)]
    if fee:
        legs.append((accounts[PLATFORM_REVENUE], fee))
    legs += [(accounts[lender_balance_code(lender_id)], paid) for lender_id, paid in payouts]
    return Posting(
        # The ledger has no loan kinds yet (escrow's TransactionKind is the foundation's): a
        # repayment is paid out to the lenders' balances.
        kind=TransactionKind.PAYOUT,
        idempotency_key=repayment_distribution_key(repayment_id),
        reference=loan_reference(loan_id),
        currency=currency,
        legs=legs,
    )

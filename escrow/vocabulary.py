"""The money vocabulary: every idempotency key, account code and reference the platform uses.

The ledger and the gateway only know strings; this module is the one place that builds them
from ids, and parses them back, so pledges, settlement, verification and fraud signals agree:

- idempotency keys, one per movement of money and what it is for: ``charge:pledge:<id>``,
  ``hold:pledge:<id>``, ``refund:pledge:<id>``, ``release:pledge:<id>``, ``fee:campaign:<id>``,
  ``payout:campaign:<id>``;
- account codes: ``backer:<id>:funding``, ``campaign:<id>:escrow``, ``campaign:<id>:payable``,
  ``initiator:<id>:payouts``, ``platform:revenue``;
- references, naming what a transaction is about: ``pledge:<id>``, ``campaign:<id>``.

Loans (the lending app) have their own section: the key ``distribute:repayment:<id>``, the
accounts ``borrower:<user id>:funding``, ``loan:<id>:clearing`` and ``lender:<user id>:balance``,
the reference ``loan:<id>``, and the repayment posting builder. A lender re-lending from their
balance pays a pledge's hold (``hold:pledge:<id>``) partly or wholly from ``lender:<id>:balance``
instead of ``backer:<id>:funding``, and its refund gives that part back there.

It also holds the posting builders (hold, refund, release, fee, payout): each knows which
accounts a movement touches and which way the money goes. A builder takes ``accounts``, the
``{code: LedgerAccount}`` that ``ledger_accounts_get_or_create(specs=...)`` returns for the
matching ``*_account_specs``, so a batch resolves all of its accounts in one query.
"""

import hashlib
from collections.abc import Mapping

from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat

from crowdfund_site.money import format_amount

from .ledger import Posting
from .models import AccountKind, LedgerAccount, TransactionKind

PLATFORM_REVENUE = "platform:revenue"

_PLEDGE = "pledge"
_CAMPAIGN = "campaign"


# --- Idempotency keys -------------------------------------------------------------------------


def _key(action: str, subject: str, subject_id: int) -> str:
    return f"{action}:{subject}:{subject_id}"


def _key_prefix(action: str, subject: str) -> str:
    return f"{action}:{subject}:"


def charge_key(pledge_id: int) -> str:
    """Return the key of the gateway charge for a pledge."""
    return _key("charge", _PLEDGE, pledge_id)


def hold_key(pledge_id: int) -> str:
    """Return the key of the ledger hold (funding -> escrow) of a pledge."""
    return _key("hold", _PLEDGE, pledge_id)


def refund_key(pledge_id: int) -> str:
    """Return the key of a pledge's refund, at the gateway and in the ledger alike."""
    return _key("refund", _PLEDGE, pledge_id)


def release_key(pledge_id: int) -> str:
    """Return the key of the ledger release (escrow -> payable) of a pledge."""
    return _key("release", _PLEDGE, pledge_id)


def fee_key(campaign_id: int) -> str:
    """Return the key of the platform fee taken on a campaign's released pledges."""
    return _key("fee", _CAMPAIGN, campaign_id)


def payout_key(campaign_id: int) -> str:
    """Return the key of a campaign's payout to its initiator, at the gateway and in the ledger."""
    return _key("payout", _CAMPAIGN, campaign_id)


CHARGE_KEY_PREFIX = _key_prefix("charge", _PLEDGE)


def pledge_id_from_charge_key(key: str) -> int | None:
    """Return the pledge id in a charge key, or None if ``key`` is not one."""
    return _id_after(key, CHARGE_KEY_PREFIX)


def charge_key_expression(pledge_id):
    """Return the SQL expression of ``charge_key(<pledge_id expression>)``, e.g. for OuterRef("pk")."""
    return _concat(CHARGE_KEY_PREFIX, pledge_id)


def refund_key_expression(pledge_id):
    """Return the SQL expression of ``refund_key(<pledge_id expression>)``."""
    return _concat(_key_prefix("refund", _PLEDGE), pledge_id)


# --- Account codes ----------------------------------------------------------------------------


def backer_funding_code(backer_id: int) -> str:
    """Return the account money comes from when a backer pays (their card, seen from here)."""
    return f"backer:{backer_id}:funding"


def campaign_escrow_code(campaign_id: int) -> str:
    """Return the account holding a campaign's pledges until settlement."""
    return f"{_CAMPAIGN}:{campaign_id}:escrow"


def campaign_payable_code(campaign_id: int) -> str:
    """Return the account of what a campaign owes its initiator after release."""
    return f"{_CAMPAIGN}:{campaign_id}:payable"


def initiator_payout_code(initiator_id: int) -> str:
    """Return the account of what left to an initiator's bank (also the payout's destination)."""
    return f"initiator:{initiator_id}:payouts"


def campaign_id_from_escrow_code(code: str) -> int | None:
    """Return the campaign id of a campaign escrow code, or None if ``code`` is not one."""
    return _id_between(code, f"{_CAMPAIGN}:", ":escrow")


def campaign_id_from_payable_code(code: str) -> int | None:
    """Return the campaign id of a campaign payable code, or None if ``code`` is not one."""
    return _id_between(code, f"{_CAMPAIGN}:", ":payable")


# --- References -------------------------------------------------------------------------------

PLEDGE_REFERENCE_PREFIX = f"{_PLEDGE}:"


def pledge_reference(pledge_id: int) -> str:
    """Return the reference of a transaction about one pledge."""
    return f"{PLEDGE_REFERENCE_PREFIX}{pledge_id}"


def campaign_reference(campaign_id: int) -> str:
    """Return the reference of a transaction about a campaign as a whole."""
    return f"{_CAMPAIGN}:{campaign_id}"


def pledge_id_from_reference(reference: str) -> int | None:
    """Return the pledge id of a pledge reference, or None if ``reference`` is not one."""
    return _id_after(reference, PLEDGE_REFERENCE_PREFIX)


def pledge_reference_expression(pledge_id):
    """Return the SQL expression of ``pledge_reference(<pledge_id expression>)``."""
    return _concat(PLEDGE_REFERENCE_PREFIX, pledge_id)


# --- Posting builders -------------------------------------------------------------------------


def hold_account_specs(*, backer_id: int, campaign_id: int, from_balance: bool = False) -> list[tuple[str, str]]:
    """The accounts of a pledge's hold or refund; ``from_balance``: part of it is paid from the backer's balance."""
    specs = [
        (backer_funding_code(backer_id), AccountKind.FUNDING_SOURCE),
        (campaign_escrow_code(campaign_id), AccountKind.ESCROW),
    ]
    if from_balance:
        specs.append((lender_balance_code(backer_id), AccountKind.PAYABLE))
    return specs


refund_account_specs = hold_account_specs


def _backer_legs(
    *, backer_id: int, amount: int, from_balance: int, sign: int, accounts: Mapping[str, LedgerAccount]
) -> list[tuple[LedgerAccount, int]]:
    """The backer's side of a pledge's hold (``sign`` -1) or refund (+1).

    What the card paid comes from (and goes back to) the backer's funding account; the part paid
    from their balance (a lender re-lending what they received) from and back to that balance,
    so a refund of it never reaches a card. A part of zero has no leg.
    """
    legs = []
    if amount - from_balance:
        legs.append((accounts[backer_funding_code(backer_id)], sign * (amount - from_balance)))
    if from_balance:
        legs.append((accounts[lender_balance_code(backer_id)], sign * from_balance))
    return legs


def release_account_specs(*, campaign_id: int) -> list[tuple[str, str]]:
    return [
        (campaign_escrow_code(campaign_id), AccountKind.ESCROW),
        (campaign_payable_code(campaign_id), AccountKind.PAYABLE),
    ]


def fee_account_specs(*, campaign_id: int) -> list[tuple[str, str]]:
    return [(campaign_payable_code(campaign_id), AccountKind.PAYABLE), (PLATFORM_REVENUE, AccountKind.REVENUE)]


def payout_account_specs(*, campaign_id: int, initiator_id: int) -> list[tuple[str, str]]:
    return [
        (campaign_payable_code(campaign_id), AccountKind.PAYABLE),
        (initiator_payout_code(initiator_id), AccountKind.PAYOUT),
    ]


def hold_posting(
    *,
    pledge_id: int,
    backer_id: int,
    campaign_id: int,
    amount: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
    from_balance: int = 0,
) -> Posting:
    """Return the posting that holds a charged pledge in its campaign's escrow.

    ``from_balance`` of the ``amount`` comes from the backer's balance instead of their card
    (accounts from ``hold_account_specs(from_balance=True)``): one transaction moves both parts.
    """
    return Posting(
        kind=TransactionKind.HOLD,
        idempotency_key=hold_key(pledge_id),
        reference=pledge_reference(pledge_id),
        currency=currency,
        legs=[
            *_backer_legs(backer_id=backer_id, amount=amount, from_balance=from_balance, sign=-1, accounts=accounts),
            (accounts[campaign_escrow_code(campaign_id)], amount),
        ],
    )


def refund_posting(
    *,
    pledge_id: int,
    backer_id: int,
    campaign_id: int,
    amount: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
    description: str = "",
    from_balance: int = 0,
) -> Posting:
    """Return the posting that gives a held pledge back from escrow to its backer.

    The part paid from the backer's balance (``from_balance``) goes back to that balance, the
    rest to their card's funding account, in one transaction.
    """
    return Posting(
        kind=TransactionKind.REFUND,
        idempotency_key=refund_key(pledge_id),
        reference=pledge_reference(pledge_id),
        currency=currency,
        legs=[
            (accounts[campaign_escrow_code(campaign_id)], -amount),
            *_backer_legs(backer_id=backer_id, amount=amount, from_balance=from_balance, sign=1, accounts=accounts),
        ],
        description=description[:255],
    )


def release_posting(
    *, pledge_id: int, campaign_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting that releases a held pledge from escrow to what the campaign is owed."""
    return Posting(
        kind=TransactionKind.RELEASE,
        idempotency_key=release_key(pledge_id),
        reference=pledge_reference(pledge_id),
        currency=currency,
        legs=[
            (accounts[campaign_escrow_code(campaign_id)], -amount),
            (accounts[campaign_payable_code(campaign_id)], amount),
        ],
    )


def fee_posting(
    *, campaign_id: int, fee: int, released: int, bps: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting of the platform fee (``bps`` of ``released``) from payable to revenue."""
    return Posting(
        kind=TransactionKind.FEE,
        idempotency_key=fee_key(campaign_id),
        reference=campaign_reference(campaign_id),
        currency=currency,
        legs=[(accounts[campaign_payable_code(campaign_id)], -fee), (accounts[PLATFORM_REVENUE], fee)],
        description=f"{bps / 100:g} % of {format_amount(released, currency)}",
    )


def payout_posting(
    *, campaign_id: int, initiator_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting of what was paid out to the initiator, from the campaign's payable."""
    return Posting(
        kind=TransactionKind.PAYOUT,
        idempotency_key=payout_key(campaign_id),
        reference=campaign_reference(campaign_id),
        currency=currency,
        legs=[
            (accounts[campaign_payable_code(campaign_id)], -amount),
            (accounts[initiator_payout_code(initiator_id)], amount),
        ],
    )


# --- Loans ------------------------------------------------------------------------------------
# A repayment is one transaction: borrower -> the loan's clearing account -> each lender's
# balance (what the platform holds for them until they withdraw), fee -> platform revenue.

REPAYMENT_DISTRIBUTION_KEY_PREFIX = _key_prefix("distribute", "repayment")
_LOAN_CLEARING_PREFIX, _LOAN_CLEARING_SUFFIX = "loan:", ":clearing"


def repayment_distribution_key(repayment_id: int) -> str:
    """Return the key of the ledger transaction that splits a loan repayment."""
    return _key("distribute", "repayment", repayment_id)


LOAN_CHARGE_KEY_PREFIX = "charge:loan:"


def repayment_charge_key(loan_id: int, client_key: str) -> str:
    """Return the gateway key of a borrower's card payment on a loan, from the client's own key."""
    # The client's key may be long and any text: a digest keeps the gateway's key short and plain.
    digest = hashlib.sha256(client_key.encode()).hexdigest()[:40]
    return f"{LOAN_CHARGE_KEY_PREFIX}{loan_id}:{digest}"


def repayment_refund_key(loan_id: int, client_key: str) -> str:
    """Return the gateway key that gives back a card payment the loan could not take after all."""
    return "refund:" + repayment_charge_key(loan_id, client_key).removeprefix("charge:")


def autopay_repayment_key(installment_id: int, attempt: int) -> str:
    """Return the repayment key of the ``attempt``-th automatic charge of an installment's due amount."""
    return f"autopay:installment:{installment_id}:{attempt}"


def loan_reference(loan_id: int) -> str:
    """Return the reference of a transaction about a loan."""
    return f"loan:{loan_id}"


def borrower_funding_code(borrower_id: int) -> str:
    """Return the account a borrower's repayments come from (their card, seen from here)."""
    return f"borrower:{borrower_id}:funding"


def loan_clearing_code(loan_id: int) -> str:
    """Return the account each repayment of a loan passes through; zero after every transaction."""
    return f"{_LOAN_CLEARING_PREFIX}{loan_id}{_LOAN_CLEARING_SUFFIX}"


def lender_balance_code(lender_id: int) -> str:
    """Return the account of what the platform holds for a lender until they withdraw it."""
    return f"lender:{lender_id}:balance"


def is_loan_clearing_code(code: str) -> bool:
    """Return whether ``code`` names a loan clearing account."""
    return code.startswith(_LOAN_CLEARING_PREFIX) and code.endswith(_LOAN_CLEARING_SUFFIX)


def loan_id_from_clearing_code(code: str) -> int | None:
    """Return the loan id of a loan clearing code, or None if ``code`` is not one."""
    return _id_between(code, _LOAN_CLEARING_PREFIX, _LOAN_CLEARING_SUFFIX)


def loan_clearing_code_filter() -> dict[str, str]:
    """Return ORM lookups on a ledger account's ``code`` that match loan clearing accounts."""
    return {"code__startswith": _LOAN_CLEARING_PREFIX, "code__endswith": _LOAN_CLEARING_SUFFIX}


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
    """Return the one posting of a loan repayment; ``payouts`` are non-zero ``(lender id, amount)`` pairs.

    The payouts sum to ``amount - fee``. The clearing account takes the whole amount and gives it
    all on, so it is zero after the transaction.
    """
    clearing = accounts[loan_clearing_code(loan_id)]
    legs = [(accounts[borrower_funding_code(borrower_id)], -amount), (clearing, amount), (clearing, -amount)]
    if fee:
        legs.append((accounts[PLATFORM_REVENUE], fee))
    legs += [(accounts[lender_balance_code(lender_id)], paid) for lender_id, paid in payouts]
    return Posting(
        # There is no loan kind of transaction yet: a repayment is paid out to the lenders' balances.
        kind=TransactionKind.PAYOUT,
        idempotency_key=repayment_distribution_key(repayment_id),
        reference=loan_reference(loan_id),
        currency=currency,
        legs=legs,
    )


# --- Parsing helpers --------------------------------------------------------------------------


def _id_after(text: str, prefix: str) -> int | None:
    rest = text[len(prefix) :] if text.startswith(prefix) else ""
    return int(rest) if rest.isascii() and rest.isdigit() else None


def _id_between(text: str, prefix: str, suffix: str) -> int | None:
    if not text.endswith(suffix):
        return None
    return _id_after(text[: -len(suffix)], prefix)


def _concat(prefix: str, id_expression):
    return Concat(Value(prefix), Cast(id_expression, CharField()))


# --- Matching pools ---------------------------------------------------------------------------
# A sponsor's pool is charged through the gateway (``charge:pool:<id>``) and deposited in its own
# account (``deposit:pool:<id>``, sponsor funding -> ``pool:<id>:funds``). Paying a round moves
# its allocations pool -> campaign escrows in one transaction (``allocate:round:<id>``); each
# allocation then settles with its campaign: released to the campaign's payable
# (``release:allocation:<id>``) or returned to the pool (``return:allocation:<id>``). What is
# left when the pool closes goes back to the sponsor (``refund:pool:<id>``), or on to the
# sponsor's next pool if they chose so (``rollover:pool:<id>``, pool -> next pool). A refund of
# what rolled in goes back against the charges it came from (``refund:pool:<id>:charge-of:<id>``).

_POOL = "pool"
_ROUND = "round"
_ALLOCATION = "allocation"


def pool_charge_key(pool_id: int) -> str:
    """Return the key of the gateway charge that funds a pool."""
    return _key("charge", _POOL, pool_id)


def pool_deposit_key(pool_id: int) -> str:
    """Return the key of the ledger deposit (sponsor funding -> pool) of a pool's charge."""
    return _key("deposit", _POOL, pool_id)


def pool_rollover_key(pool_id: int) -> str:
    """Return the key of what is left in a closed pool moving on to the sponsor's next pool."""
    return _key("rollover", _POOL, pool_id)


def pool_refund_key(pool_id: int) -> str:
    """Return the key of what is left in a pool going back to its sponsor, at the gateway and in the ledger."""
    return _key("refund", _POOL, pool_id)


def pool_refund_part_key(pool_id: int, charge_pool_id: int) -> str:
    """Return the gateway key of the part of a closed pool's refund sent back against ``charge_pool_id``'s charge.

    A pool's own charge keeps ``pool_refund_key``; what came in by roll-over goes back against the
    charge of the pool it came from, one key per charge.
    """
    if charge_pool_id == pool_id:
        return pool_refund_key(pool_id)
    return f"{pool_refund_key(pool_id)}:charge-of:{charge_pool_id}"


POOL_REFUND_KEY_PREFIX = _key_prefix("refund", _POOL)


def pool_refund_part_ids(key: str) -> tuple[int, int] | None:
    """Return ``(pool id, charge's pool id)`` of a ``pool_refund_part_key``, or None if ``key`` is not one."""
    head, _, charge_pool = key.partition(":charge-of:")
    pool_id = _id_after(head, POOL_REFUND_KEY_PREFIX)
    if pool_id is None:
        return None
    if not charge_pool:
        return (pool_id, pool_id)
    charge_pool_id = _id_after(charge_pool, "")
    return None if charge_pool_id is None else (pool_id, charge_pool_id)


def round_allocate_key(round_id: int) -> str:
    """Return the key of the one transaction that pays a round's allocations into campaign escrows."""
    return _key("allocate", _ROUND, round_id)


def allocation_release_key(allocation_id: int) -> str:
    """Return the key of the release (escrow -> payable) of a campaign's matched money."""
    return _key("release", _ALLOCATION, allocation_id)


def allocation_return_key(allocation_id: int) -> str:
    """Return the key of the return (campaign escrow -> pool) of matched money of a failed campaign."""
    return _key("return", _ALLOCATION, allocation_id)


def sponsor_funding_code(sponsor_id: int) -> str:
    """Return the account a sponsor's money comes from (their card, seen from here)."""
    return f"sponsor:{sponsor_id}:funding"


def pool_funds_code(pool_id: int) -> str:
    """Return the account holding a pool's money until it is allocated (or given back)."""
    return f"{_POOL}:{pool_id}:funds"


def pool_id_from_funds_code(code: str) -> int | None:
    """Return the pool id of a pool funds code, or None if ``code`` is not one."""
    return _id_between(code, f"{_POOL}:", ":funds")


def pool_reference(pool_id: int) -> str:
    """Return the reference of a transaction about a pool as a whole."""
    return f"{_POOL}:{pool_id}"


def round_reference(round_id: int) -> str:
    """Return the reference of a transaction about a matching round."""
    return f"{_ROUND}:{round_id}"


def allocation_reference(allocation_id: int) -> str:
    """Return the reference of a transaction about one campaign's matched money."""
    return f"{_ALLOCATION}:{allocation_id}"


def pool_deposit_account_specs(*, sponsor_id: int, pool_id: int) -> list[tuple[str, str]]:
    return [
        (sponsor_funding_code(sponsor_id), AccountKind.FUNDING_SOURCE),
        (pool_funds_code(pool_id), AccountKind.ESCROW),
    ]


def round_allocate_account_specs(*, pool_id: int, campaign_ids: list[int]) -> list[tuple[str, str]]:
    return [(pool_funds_code(pool_id), AccountKind.ESCROW)] + [
        (campaign_escrow_code(cid), AccountKind.ESCROW) for cid in campaign_ids
    ]


def allocation_settle_account_specs(*, pool_id: int, campaign_id: int) -> list[tuple[str, str]]:
    return [
        (pool_funds_code(pool_id), AccountKind.ESCROW),
        (campaign_escrow_code(campaign_id), AccountKind.ESCROW),
        (campaign_payable_code(campaign_id), AccountKind.PAYABLE),
    ]


def pool_deposit_posting(
    *, pool_id: int, sponsor_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting that puts a sponsor's charged money in their pool."""
    return Posting(
        kind=TransactionKind.HOLD,
        idempotency_key=pool_deposit_key(pool_id),
        reference=pool_reference(pool_id),
        currency=currency,
        legs=[(accounts[sponsor_funding_code(sponsor_id)], -amount), (accounts[pool_funds_code(pool_id)], amount)],
    )


def round_allocate_posting(
    *, round_id: int, pool_id: int, allocations: Mapping[int, int], currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the one posting that moves a round's ``{campaign id: amount}`` from the pool to escrows."""
    legs = [(accounts[campaign_escrow_code(cid)], amount) for cid, amount in sorted(allocations.items())]
    return Posting(
        kind=TransactionKind.HOLD,
        idempotency_key=round_allocate_key(round_id),
        reference=round_reference(round_id),
        currency=currency,
        legs=[(accounts[pool_funds_code(pool_id)], -sum(allocations.values())), *legs],
    )


def allocation_release_posting(
    *, allocation_id: int, campaign_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting that releases matched money with its succeeded campaign's pledges."""
    return Posting(
        kind=TransactionKind.RELEASE,
        idempotency_key=allocation_release_key(allocation_id),
        reference=allocation_reference(allocation_id),
        currency=currency,
        legs=[
            (accounts[campaign_escrow_code(campaign_id)], -amount),
            (accounts[campaign_payable_code(campaign_id)], amount),
        ],
    )


def allocation_return_posting(
    *,
    allocation_id: int,
    pool_id: int,
    campaign_id: int,
    amount: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the posting that gives a failed campaign's matched money back to its pool."""
    return Posting(
        kind=TransactionKind.REFUND,
        idempotency_key=allocation_return_key(allocation_id),
        reference=allocation_reference(allocation_id),
        currency=currency,
        legs=[(accounts[campaign_escrow_code(campaign_id)], -amount), (accounts[pool_funds_code(pool_id)], amount)],
    )


def pool_refund_posting(
    *, pool_id: int, sponsor_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting that gives what is left in a closed pool back to its sponsor."""
    return Posting(
        kind=TransactionKind.REFUND,
        idempotency_key=pool_refund_key(pool_id),
        reference=pool_reference(pool_id),
        currency=currency,
        legs=[(accounts[pool_funds_code(pool_id)], -amount), (accounts[sponsor_funding_code(sponsor_id)], amount)],
    )


def pool_rollover_account_specs(*, pool_id: int, next_pool_id: int) -> list[tuple[str, str]]:
    return [(pool_funds_code(pool_id), AccountKind.ESCROW), (pool_funds_code(next_pool_id), AccountKind.ESCROW)]


def pool_rollover_posting(
    *, pool_id: int, next_pool_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting that moves what is left in a closed pool on to the sponsor's next pool."""
    return Posting(
        kind=TransactionKind.ADJUSTMENT,
        idempotency_key=pool_rollover_key(pool_id),
        reference=pool_reference(pool_id),
        currency=currency,
        legs=[(accounts[pool_funds_code(pool_id)], -amount), (accounts[pool_funds_code(next_pool_id)], amount)],
    )


# --- Pledge changes ---------------------------------------------------------------------------
# A held pledge whose amount changes keeps its number: more is charged as the difference (its own
# gateway charge), less is refunded as the difference (partial refunds of the pledge's charges,
# newest first). Each change is one ledger transaction about the pledge (reference
# ``pledge:<id>``, kind adjustment, so the pledge's single hold and single final refund or release
# stay what they were), keyed by the change.

_PLEDGE_CHANGE = "pledge-change"
_PLEDGE_TOPUP = "pledge-topup"


def pledge_change_charge_key(change_id: int) -> str:
    """Return the key of the gateway charge of the difference a change of a pledge adds."""
    return _key("charge", _PLEDGE_CHANGE, change_id)


def pledge_change_posting_key(change_id: int) -> str:
    """Return the key of the ledger transaction that moves a change's difference into or out of escrow."""
    return _key("adjust", _PLEDGE_CHANGE, change_id)


def pledge_change_refund_key(change_id: int, part: int) -> str:
    """Return the gateway key of the ``part``-th partial refund a lowered pledge sends (one per charge it draws on)."""
    return f"{_key('refund', _PLEDGE_CHANGE, change_id)}:{part}"


def pledge_topup_refund_key(change_id: int) -> str:
    """Return the gateway key that refunds what is left of a change's own charge when its pledge is refunded."""
    return _key("refund", _PLEDGE_TOPUP, change_id)


PLEDGE_CHANGE_REFUND_KEY_PREFIX = _key_prefix("refund", _PLEDGE_CHANGE)
PLEDGE_TOPUP_REFUND_KEY_PREFIX = _key_prefix("refund", _PLEDGE_TOPUP)
PLEDGE_CHANGE_CHARGE_KEY_PREFIX = _key_prefix("charge", _PLEDGE_CHANGE)


pledge_change_account_specs = hold_account_specs


def pledge_change_posting(
    *,
    change_id: int,
    pledge_id: int,
    backer_id: int,
    campaign_id: int,
    difference: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
    description: str = "",
) -> Posting:
    """Return the posting of a change of a held pledge's amount by ``difference`` (non-zero).

    Positive: the difference charged moves from the backer into the campaign's escrow, as a hold
    does. Negative: it goes back from escrow to the backer, as a refund does.
    """
    if difference == 0:
        raise ValueError("A pledge change posting needs a non-zero difference.")
    return Posting(
        kind=TransactionKind.ADJUSTMENT,
        idempotency_key=pledge_change_posting_key(change_id),
        reference=pledge_reference(pledge_id),
        currency=currency,
        legs=[
            (accounts[backer_funding_code(backer_id)], -difference),
            (accounts[campaign_escrow_code(campaign_id)], difference),
        ],
        description=description[:255],
    )


# --- Lender withdrawals -------------------------------------------------------------------------
# A withdrawal is paid out through the gateway first, then posted: lender balance -> the
# lender's payouts account (money that left to their bank), keyed by the withdrawal.

WITHDRAWAL_KEY_PREFIX = _key_prefix("withdraw", "withdrawal")


def withdrawal_key(withdrawal_id: int) -> str:
    """Return the key of a lender's withdrawal, at the gateway and in the ledger."""
    return _key("withdraw", "withdrawal", withdrawal_id)


def lender_payout_code(lender_id: int) -> str:
    """Return the account of what left to a lender's bank (also the withdrawal's destination)."""
    return f"lender:{lender_id}:payouts"


def withdrawal_account_specs(*, lender_id: int) -> list[tuple[str, str]]:
    return [
        (lender_balance_code(lender_id), AccountKind.PAYABLE),
        (lender_payout_code(lender_id), AccountKind.PAYOUT),
    ]


def withdrawal_posting(
    *, withdrawal_id: int, lender_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting of what a lender withdrew, from their balance to their bank."""
    return Posting(
        kind=TransactionKind.PAYOUT,
        idempotency_key=withdrawal_key(withdrawal_id),
        reference=f"withdrawal:{withdrawal_id}",
        currency=currency,
        legs=[
            (accounts[lender_balance_code(lender_id)], -amount),
            (accounts[lender_payout_code(lender_id)], amount),
        ],
    )

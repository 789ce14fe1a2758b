"""The money vocabulary of staged release: milestone tranches and the refund of the remainder.

Beside ``vocabulary`` (which would pass 600 lines with it), built from the same pieces:

- a campaign with milestones releases its pledges at success into its **staged** escrow account,
  ``campaign:<id>:staged`` (the pledge's usual ``release:pledge:<id>`` key), not to its payable;
- each tranche moves staged -> payable (``release:milestone:<id>``), its fee payable -> revenue
  (``fee:milestone:<id>``) and its net payable -> the initiator (``payout:milestone:<id>``, also the
  gateway payout's key), all with the reference ``milestone:<id>``. The first tranche, released at
  success, uses the campaign's own fee and payout keys, as any release at success does;
- the refund of the remainder gives each pledge its part, staged -> backer funding, keyed
  ``refund:remainder:pledge:<id>`` (at the gateway and in the ledger) with the reference
  ``remainder:pledge:<id>``: a pledge's own ``refund:pledge:<id>`` stays free, and a pledge is never
  both released and refunded under its own reference.
"""

from collections.abc import Mapping

from crowdfund_site.money import format_amount

from .ledger import Posting
from .models import AccountKind, LedgerAccount, TransactionKind
from .vocabulary import (
    PLATFORM_REVENUE,
    _id_after,
    _id_between,
    _key,
    backer_funding_code,
    campaign_escrow_code,
    campaign_payable_code,
    initiator_payout_code,
    pledge_reference,
    release_key,
)

_MILESTONE = "milestone"
REMAINDER_REFERENCE_PREFIX = "remainder:pledge:"
REMAINDER_REFUND_KEY_PREFIX = "refund:" + REMAINDER_REFERENCE_PREFIX


def campaign_staged_code(campaign_id: int) -> str:
    """Return the escrow account holding what a succeeded campaign has not yet released by milestone."""
    return f"campaign:{campaign_id}:staged"


def campaign_id_from_staged_code(code: str) -> int | None:
    """Return the campaign id of a staged account code, or None if ``code`` is not one."""
    return _id_between(code, "campaign:", ":staged")


def tranche_release_key(milestone_id: int) -> str:
    """Return the key of a milestone's tranche moving from staged escrow to the campaign's payable."""
    return _key("release", _MILESTONE, milestone_id)


def tranche_fee_key(milestone_id: int) -> str:
    """Return the key of the platform fee on a milestone's tranche."""
    return _key("fee", _MILESTONE, milestone_id)


def tranche_payout_key(milestone_id: int) -> str:
    """Return the key of a tranche's payout to the initiator, at the gateway and in the ledger."""
    return _key("payout", _MILESTONE, milestone_id)


def milestone_reference(milestone_id: int) -> str:
    """Return the reference of a transaction about one milestone's tranche."""
    return f"{_MILESTONE}:{milestone_id}"


def milestone_id_from_reference(reference: str) -> int | None:
    """Return the milestone id of a milestone reference, or None if ``reference`` is not one."""
    return _id_after(reference, f"{_MILESTONE}:")


def remainder_refund_key(pledge_id: int) -> str:
    """Return the key of a pledge's part of the refund of the remainder (gateway and ledger)."""
    return f"{REMAINDER_REFUND_KEY_PREFIX}{pledge_id}"


def remainder_refund_charge_key(pledge_id: int, charge: int) -> str:
    """Return the gateway key of the piece of a pledge's remainder refund drawn on its ``charge``-th charge (1 on).

    Only a pledge whose amount was raised has more than one charge (``pledges.changes``); the piece
    drawn on its own first charge keeps ``remainder_refund_key``.
    """
    return f"{remainder_refund_key(pledge_id)}:{charge}"


def remainder_reference(pledge_id: int) -> str:
    """Return the reference of a pledge's refund of the remainder."""
    return f"{REMAINDER_REFERENCE_PREFIX}{pledge_id}"


def pledge_id_from_remainder_reference(reference: str) -> int | None:
    """Return the pledge id of a remainder reference, or None if ``reference`` is not one."""
    return _id_after(reference, REMAINDER_REFERENCE_PREFIX)


# --- Posting builders -------------------------------------------------------------------------


def staged_release_account_specs(*, campaign_id: int) -> list[tuple[str, str]]:
    return [
        (campaign_escrow_code(campaign_id), AccountKind.ESCROW),
        (campaign_staged_code(campaign_id), AccountKind.ESCROW),
    ]


def tranche_account_specs(*, campaign_id: int, initiator_id: int) -> list[tuple[str, str]]:
    return [
        (campaign_staged_code(campaign_id), AccountKind.ESCROW),
        (campaign_payable_code(campaign_id), AccountKind.PAYABLE),
        (PLATFORM_REVENUE, AccountKind.REVENUE),
        (initiator_payout_code(initiator_id), AccountKind.PAYOUT),
    ]


def remainder_account_specs(*, campaign_id: int, backer_id: int) -> list[tuple[str, str]]:
    return [
        (campaign_staged_code(campaign_id), AccountKind.ESCROW),
        (backer_funding_code(backer_id), AccountKind.FUNDING_SOURCE),
    ]


def staged_release_posting(
    *, pledge_id: int, campaign_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting that releases a held pledge of a campaign with milestones into staged escrow."""
    return Posting(
        kind=TransactionKind.RELEASE,
        idempotency_key=release_key(pledge_id),
        reference=pledge_reference(pledge_id),
        currency=currency,
        legs=[
            (accounts[campaign_escrow_code(campaign_id)], -amount),
            (accounts[campaign_staged_code(campaign_id)], amount),
        ],
    )


def tranche_release_posting(
    *, milestone_id: int, campaign_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting that moves a milestone's tranche from staged escrow to the campaign's payable."""
    return Posting(
        kind=TransactionKind.RELEASE,
        idempotency_key=tranche_release_key(milestone_id),
        reference=milestone_reference(milestone_id),
        currency=currency,
        legs=[
            (accounts[campaign_staged_code(campaign_id)], -amount),
            (accounts[campaign_payable_code(campaign_id)], amount),
        ],
    )


def tranche_fee_posting(
    *,
    milestone_id: int,
    campaign_id: int,
    fee: int,
    released: int,
    bps: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the posting of the platform fee (``bps`` of the tranche ``released``), payable -> revenue."""
    return Posting(
        kind=TransactionKind.FEE,
        idempotency_key=tranche_fee_key(milestone_id),
        reference=milestone_reference(milestone_id),
        currency=currency,
        legs=[(accounts[campaign_payable_code(campaign_id)], -fee), (accounts[PLATFORM_REVENUE], fee)],
        description=f"{bps / 100:g} % of {format_amount(released, currency)}",
    )


def tranche_payout_posting(
    *,
    milestone_id: int,
    campaign_id: int,
    initiator_id: int,
    amount: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the posting of a tranche's net paid out to the initiator, from the campaign's payable."""
    return Posting(
        kind=TransactionKind.PAYOUT,
        idempotency_key=tranche_payout_key(milestone_id),
        reference=milestone_reference(milestone_id),
        currency=currency,
        legs=[
            (accounts[campaign_payable_code(campaign_id)], -amount),
            (accounts[initiator_payout_code(initiator_id)], amount),
        ],
    )


def remainder_refund_posting(
    *,
    pledge_id: int,
    backer_id: int,
    campaign_id: int,
    amount: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the posting of a pledge's part of the remainder, from staged escrow back to its backer."""
    return Posting(
        kind=TransactionKind.REFUND,
        idempotency_key=remainder_refund_key(pledge_id),
        reference=remainder_reference(pledge_id),
        currency=currency,
        legs=[
            (accounts[campaign_staged_code(campaign_id)], -amount),
            (accounts[backer_funding_code(backer_id)], amount),
        ],
    )

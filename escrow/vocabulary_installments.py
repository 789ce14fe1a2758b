"""The money vocabulary of pledges paid over time (3 monthly installments, ``pledges.installments``).

Beside ``vocabulary``, built from the same pieces:

- the first installment is the pledge's own charge and hold (``charge:pledge:<id>``,
  ``hold:pledge:<id>``); each later one is charged once per attempt under
  ``charge:installment:<id>:<attempt>``;
- paid while the pledge is held, it joins the pledge in escrow: backer funding -> campaign
  escrow, keyed ``hold:installment:<id>``, with the pledge's reference, so the pledge's checks
  count it with the rest of what it holds;
- paid after the pledge was released, it goes to the initiator at once: one transaction, keyed
  ``payout:installment:<id>`` (also the gateway payout's key) with the reference
  ``installment:<id>``, takes it from the backer's funding and gives the fee to platform revenue
  and the rest to the initiator;
- a paid later installment whose pledge is refunded is given back at the gateway under
  ``refund:installment:<id>`` (the ledger refunds the pledge's whole held amount at once).
"""

from collections.abc import Mapping

from .ledger import Posting
from .models import AccountKind, LedgerAccount, TransactionKind
from .vocabulary import (
    PLATFORM_REVENUE,
    _id_after,
    backer_funding_code,
    campaign_escrow_code,
    initiator_payout_code,
    pledge_reference,
)

INSTALLMENT_REFERENCE_PREFIX = "installment:"
INSTALLMENT_CHARGE_KEY_PREFIX = "charge:installment:"
INSTALLMENT_HOLD_KEY_PREFIX = "hold:installment:"


def installment_charge_key(installment_id: int, attempt: int) -> str:
    """Return the gateway key of the ``attempt``-th charge of an installment (a retry is a new attempt)."""
    return f"{INSTALLMENT_CHARGE_KEY_PREFIX}{installment_id}:{attempt}"


def installment_hold_key(installment_id: int) -> str:
    """Return the key of the ledger hold (funding -> escrow) of an installment paid while its pledge is held."""
    return f"{INSTALLMENT_HOLD_KEY_PREFIX}{installment_id}"


def installment_refund_key(installment_id: int) -> str:
    """Return the gateway key that gives back an installment's charge."""
    return f"refund:installment:{installment_id}"


def installment_payout_key(installment_id: int) -> str:
    """Return the key of an installment paid after release: its gateway payout and its ledger transaction."""
    return f"payout:installment:{installment_id}"


def installment_reference(installment_id: int) -> str:
    return f"{INSTALLMENT_REFERENCE_PREFIX}{installment_id}"


def installment_id_from_reference(reference: str) -> int | None:
    return _id_after(reference, INSTALLMENT_REFERENCE_PREFIX)


def installment_hold_account_specs(*, backer_id: int, campaign_id: int) -> list[tuple[str, str]]:
    return [
        (backer_funding_code(backer_id), AccountKind.FUNDING_SOURCE),
        (campaign_escrow_code(campaign_id), AccountKind.ESCROW),
    ]


def installment_hold_posting(
    *,
    installment_id: int,
    pledge_id: int,
    backer_id: int,
    campaign_id: int,
    amount: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the posting that adds a paid installment to its held pledge in the campaign's escrow."""
    return Posting(
        kind=TransactionKind.HOLD,
        idempotency_key=installment_hold_key(installment_id),
        reference=pledge_reference(pledge_id),
        currency=currency,
        legs=[
            (accounts[backer_funding_code(backer_id)], -amount),
            (accounts[campaign_escrow_code(campaign_id)], amount),
        ],
    )


def installment_payout_account_specs(*, backer_id: int, initiator_id: int) -> list[tuple[str, str]]:
    return [
        (backer_funding_code(backer_id), AccountKind.FUNDING_SOURCE),
        (PLATFORM_REVENUE, AccountKind.REVENUE),
        (initiator_payout_code(initiator_id), AccountKind.PAYOUT),
    ]


def installment_payout_posting(
    *,
    installment_id: int,
    backer_id: int,
    initiator_id: int,
    amount: int,
    fee: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the one posting of an installment paid after release: backer -> fee to revenue, rest to the initiator."""
    legs = [(accounts[backer_funding_code(backer_id)], -amount)]
    if fee:
        legs.append((accounts[PLATFORM_REVENUE], fee))
    legs.append((accounts[initiator_payout_code(initiator_id)], amount - fee))
    return Posting(
        kind=TransactionKind.PAYOUT,
        idempotency_key=installment_payout_key(installment_id),
        reference=installment_reference(installment_id),
        currency=currency,
        legs=legs,
    )

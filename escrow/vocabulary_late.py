"""The money vocabulary of late pledges' weekly release, beside ``vocabulary``.

A late pledge is held like any pledge (``hold:pledge:<id>`` into ``campaign:<id>:escrow``) and
released like one (``release:pledge:<id>``, escrow -> ``campaign:<id>:payable``), but by a weekly
batch rather than at the deadline. The batch's fee (payable -> platform revenue) and payout
(payable -> the initiator) are its own: ``fee:late:batch:<id>`` and ``payout:late:batch:<id>``
(also the gateway payout's key), both with the reference ``late:batch:<id>``, so the campaign's
own ``fee:campaign:<id>`` and ``payout:campaign:<id>`` stay its success's.
"""

from collections.abc import Mapping

from crowdfund_site.money import format_amount

from .ledger import Posting
from .models import LedgerAccount, TransactionKind
from .vocabulary import PLATFORM_REVENUE, _id_after, campaign_payable_code, initiator_payout_code

LATE_BATCH_REFERENCE_PREFIX = "late:batch:"


def late_batch_reference(batch_id: int) -> str:
    """Return the reference of a weekly batch's fee and payout."""
    return f"{LATE_BATCH_REFERENCE_PREFIX}{batch_id}"


def batch_id_from_late_reference(reference: str) -> int | None:
    return _id_after(reference, LATE_BATCH_REFERENCE_PREFIX)


def late_fee_key(batch_id: int) -> str:
    return f"fee:{late_batch_reference(batch_id)}"


def late_payout_key(batch_id: int) -> str:
    """Return the key of a batch's payout to the initiator, at the gateway and in the ledger."""
    return f"payout:{late_batch_reference(batch_id)}"


def late_fee_posting(
    *,
    batch_id: int,
    campaign_id: int,
    fee: int,
    released: int,
    bps: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the posting of a batch's platform fee (``bps`` of ``released``), payable -> revenue."""
    return Posting(
        kind=TransactionKind.FEE,
        idempotency_key=late_fee_key(batch_id),
        reference=late_batch_reference(batch_id),
        currency=currency,
        legs=[(accounts[campaign_payable_code(campaign_id)], -fee), (accounts[PLATFORM_REVENUE], fee)],
        description=f"{bps / 100:g} % of {format_amount(released, currency)} (late pledges)",
    )


def late_payout_posting(
    *,
    batch_id: int,
    campaign_id: int,
    initiator_id: int,
    amount: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> Posting:
    """Return the posting of a batch's net paid out to the initiator, from the campaign's payable."""
    return Posting(
        kind=TransactionKind.PAYOUT,
        idempotency_key=late_payout_key(batch_id),
        reference=late_batch_reference(batch_id),
        currency=currency,
        legs=[
            (accounts[campaign_payable_code(campaign_id)], -amount),
            (accounts[initiator_payout_code(initiator_id)], amount),
        ],
    )

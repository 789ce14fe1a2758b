"""The money vocabulary of the delivery holdback: kept at success, released or refunded by delivery.

Beside ``vocabulary`` and ``vocabulary_tranches``, built from the same pieces:

- at success a campaign with rewards moves its holdback from its payable into its **holdback**
  escrow account, ``campaign:<id>:holdback`` (key and reference ``holdback:campaign:<id>``),
  before the fee and payout on the rest;
- once every backer of a shipped reward tier received (or a report was dismissed), or staff
  upheld their report, the tier's holdback is settled: the received parts move holdback ->
  payable (``release:holdback:tier:<id>``), their fee payable -> revenue (``fee:holdback:tier:<id>``)
  and the net payable -> the initiator (``payout:holdback:tier:<id>``, also the gateway payout's
  key), all with the reference ``holdback:tier:<id>``;
- an upheld report, or staff declaring a tier never shipped not delivered, refunds that
  pledge's part, holdback -> backer funding, keyed
  ``refund:holdback:pledge:<id>`` (gateway and ledger) with the reference ``holdback:pledge:<id>``,
  so a pledge's own refund key and its remainder refund key stay free.
"""

from collections.abc import Mapping

from crowdfund_site.money import format_amount

from .ledger import Posting
from .models import AccountKind, LedgerAccount, TransactionKind
from .vocabulary import (
    PLATFORM_REVENUE,
    _id_after,
    _id_between,
    backer_funding_code,
    campaign_payable_code,
    initiator_payout_code,
)

HOLDBACK_CAMPAIGN_REFERENCE_PREFIX = "holdback:campaign:"
HOLDBACK_TIER_REFERENCE_PREFIX = "holdback:tier:"
HOLDBACK_PLEDGE_REFERENCE_PREFIX = "holdback:pledge:"


def campaign_holdback_code(campaign_id: int) -> str:
    """Return the escrow account holding a succeeded campaign's delivery holdback."""
    return f"campaign:{campaign_id}:holdback"


def campaign_id_from_holdback_code(code: str) -> int | None:
    """Return the campaign id of a holdback account code, or None if ``code`` is not one."""
    return _id_between(code, "campaign:", ":holdback")


def holdback_keep_key(campaign_id: int) -> str:
    """Return the key of the posting that keeps a campaign's holdback at success."""
    return f"{HOLDBACK_CAMPAIGN_REFERENCE_PREFIX}{campaign_id}"


def holdback_campaign_reference(campaign_id: int) -> str:
    return f"{HOLDBACK_CAMPAIGN_REFERENCE_PREFIX}{campaign_id}"


def holdback_tier_reference(tier_id: int) -> str:
    """Return the reference of the release of one reward tier's holdback."""
    return f"{HOLDBACK_TIER_REFERENCE_PREFIX}{tier_id}"


def tier_id_from_holdback_reference(reference: str) -> int | None:
    return _id_after(reference, HOLDBACK_TIER_REFERENCE_PREFIX)


def holdback_release_key(tier_id: int) -> str:
    return f"release:{holdback_tier_reference(tier_id)}"


def holdback_fee_key(tier_id: int) -> str:
    return f"fee:{holdback_tier_reference(tier_id)}"


def holdback_payout_key(tier_id: int) -> str:
    """Return the key of a tier's holdback payout to the initiator, at the gateway and in the ledger."""
    return f"payout:{holdback_tier_reference(tier_id)}"


def holdback_pledge_reference(pledge_id: int) -> str:
    """Return the reference of a pledge's refund of its part of the holdback."""
    return f"{HOLDBACK_PLEDGE_REFERENCE_PREFIX}{pledge_id}"


def pledge_id_from_holdback_reference(reference: str) -> int | None:
    return _id_after(reference, HOLDBACK_PLEDGE_REFERENCE_PREFIX)


def holdback_refund_key(pledge_id: int) -> str:
    """Return the key of a pledge's refund of its part of the holdback (gateway and ledger)."""
    return f"refund:{holdback_pledge_reference(pledge_id)}"


def holdback_refund_charge_key(pledge_id: int, charge: int) -> str:
    """Return the gateway key of the piece of a pledge's holdback refund drawn on its ``charge``-th charge (1 on).

    Only a pledge whose amount was raised has more than one charge; the piece drawn on its own
    first charge keeps ``holdback_refund_key``.
    """
    return f"{holdback_refund_key(pledge_id)}:{charge}"


# --- Posting builders -------------------------------------------------------------------------


def holdback_account_specs(*, campaign_id: int, initiator_id: int) -> list[tuple[str, str]]:
    return [
        (campaign_holdback_code(campaign_id), AccountKind.ESCROW),
        (campaign_payable_code(campaign_id), AccountKind.PAYABLE),
        (PLATFORM_REVENUE, AccountKind.REVENUE),
        (initiator_payout_code(initiator_id), AccountKind.PAYOUT),
    ]


def holdback_refund_account_specs(*, campaign_id: int, backer_id: int) -> list[tuple[str, str]]:
    return [
        (campaign_holdback_code(campaign_id), AccountKind.ESCROW),
        (backer_funding_code(backer_id), AccountKind.FUNDING_SOURCE),
    ]


def holdback_keep_posting(
    *, campaign_id: int, amount: int, currency: str, accounts: Mapping[str, LedgerAccount]
) -> Posting:
    """Return the posting that keeps the holdback at success, payable -> holdback escrow."""
    return Posting(
        kind=TransactionKind.RELEASE,
        idempotency_key=holdback_keep_key(campaign_id),
        reference=holdback_campaign_reference(campaign_id),
        currency=currency,
        legs=[
            (accounts[campaign_payable_code(campaign_id)], -amount),
            (accounts[campaign_holdback_code(campaign_id)], amount),
        ],
        description="delivery holdback kept",
    )


def holdback_release_postings(
    *,
    tier_id: int,
    campaign_id: int,
    initiator_id: int,
    released: int,
    fee: int,
    bps: int,
    net: int,
    currency: str,
    accounts: Mapping[str, LedgerAccount],
) -> list[Posting]:
    """Return the postings of a tier's received holdback: release, its fee and the net payout."""
    reference = holdback_tier_reference(tier_id)
    payable = accounts[campaign_payable_code(campaign_id)]
    postings = [
        Posting(
            kind=TransactionKind.RELEASE,
            idempotency_key=holdback_release_key(tier_id),
            reference=reference,
            currency=currency,
            legs=[(accounts[campaign_holdback_code(campaign_id)], -released), (payable, released)],
        )
    ]
    if fee:
        postings.append(
            Posting(
                kind=TransactionKind.FEE,
                idempotency_key=holdback_fee_key(tier_id),
                reference=reference,
                currency=currency,
                legs=[(payable, -fee), (accounts[PLATFORM_REVENUE], fee)],
                description=f"{bps / 100:g} % of {format_amount(released, currency)}",
            )
        )
    if net:
        postings.append(
            Posting(
                kind=TransactionKind.PAYOUT,
                idempotency_key=holdback_payout_key(tier_id),
                reference=reference,
                currency=currency,
                legs=[(payable, -net), (accounts[initiator_payout_code(initiator_id)], net)],
            )
        )
    return postings


def holdback_refund_posting(
    *, pledge_id: int, backer_id: int, campaign_id: int, amount: int, currency: str, accounts
) -> Posting:
    """Return the posting of a pledge's part of the holdback refunded to its backer (report upheld)."""
    return Posting(
        kind=TransactionKind.REFUND,
        idempotency_key=holdback_refund_key(pledge_id),
        reference=holdback_pledge_reference(pledge_id),
        currency=currency,
        legs=[
            (accounts[campaign_holdback_code(campaign_id)], -amount),
            (accounts[backer_funding_code(backer_id)], amount),
        ],
    )

"""How the platform names its ledger accounts.

The ledger itself only knows codes; these helpers are the single place that maps campaigns,
backers and initiators onto them, so settlement, pledges and verification agree.
"""

from .models import AccountKind

PLATFORM_REVENUE = "platform:revenue"


def backer_funding_code(backer_id: int) -> str:
    return f"backer:{backer_id}:funding"


def campaign_escrow_code(campaign_id: int) -> str:
    return f"campaign:{campaign_id}:escrow"


def campaign_payable_code(campaign_id: int) -> str:
    return f"campaign:{campaign_id}:payable"


def initiator_payout_code(initiator_id: int) -> str:
    return f"initiator:{initiator_id}:payouts"


def pledge_reference(pledge_id: int) -> str:
    return f"pledge:{pledge_id}"


def campaign_reference(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


ACCOUNT_KINDS = {
    "backer": AccountKind.FUNDING_SOURCE,
    "escrow": AccountKind.ESCROW,
    "payable": AccountKind.PAYABLE,
    "revenue": AccountKind.REVENUE,
    "payouts": AccountKind.PAYOUT,
}

"""What a money test looks at: every row a movement of money could touch, and the invariants."""

from django.db.models import Sum

from escrow.accounts import backer_funding_code, campaign_escrow_code
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, LedgerEntry, LedgerTransaction, OperationKind, OperationStatus
from escrow.verification import ledger_verify
from pledges.models import Pledge, PledgeStatus, PledgeStatusChange
from pledges.services import charge_key
from projects.models import Campaign, CampaignStatus, RewardTier


def money_state() -> dict:
    """Return a snapshot to compare before and after a refused request: it must not change."""
    return {
        "pledges": sorted(Pledge.objects.values_list("pk", "status")),
        "pledge_status_changes": PledgeStatusChange.objects.count(),
        "ledger_transactions": LedgerTransaction.objects.count(),
        "ledger_entries": LedgerEntry.objects.count(),
        "gateway_operations": sorted(
            GatewayOperation.objects.values_list("idempotency_key", "status", "refunded_amount", "attempts")
        ),
        "campaigns": sorted(Campaign.objects.values_list("pk", "status", "pledged_amount", "backer_count")),
        "rewards": sorted(RewardTier.objects.values_list("pk", "claimed_count")),
    }


def escrow_balance(campaign) -> int:
    return account_balances(codes=[campaign_escrow_code(campaign.pk)]).get(
        (campaign_escrow_code(campaign.pk), campaign.currency), 0
    )


def funding_balance(backer, currency: str = "USD") -> int:
    """Return what the ledger says the backer has put in (negative) and not got back."""
    return account_balances(codes=[backer_funding_code(backer.pk)]).get((backer_funding_code(backer.pk), currency), 0)


def charge_of(pledge) -> GatewayOperation | None:
    return GatewayOperation.objects.filter(kind=OperationKind.CHARGE, idempotency_key=charge_key(pledge.pk)).first()


def net_charged(pledge) -> int:
    """Return what the backer's card is out of pocket for this pledge at the gateway."""
    charge = charge_of(pledge)
    if charge is None or charge.status != OperationStatus.SUCCEEDED:
        return 0
    return charge.amount - charge.refunded_amount


def invariant_problems() -> list[str]:
    """Return ``ledger_verify()`` plus what a backer or initiator would see on their own page."""
    problems = list(ledger_verify())
    for pledge in Pledge.objects.all():
        paid = pledge.amount if pledge.status in (PledgeStatus.HELD, PledgeStatus.RELEASED) else 0
        if net_charged(pledge) != paid:
            problems.append(
                f"pledge {pledge.pk} ({pledge.status}): card charged {net_charged(pledge)}, expected {paid}"
            )
    for campaign in Campaign.objects.filter(status__in=[CampaignStatus.LIVE, CampaignStatus.SUSPENDED]):
        held = campaign.pledges.filter(status=PledgeStatus.HELD)
        held_total = held.aggregate(t=Sum("amount"))["t"] or 0
        backers = held.values("backer_id").distinct().count()
        if (campaign.pledged_amount, campaign.backer_count) != (held_total, backers):
            problems.append(
                f"campaign {campaign.pk} shows {campaign.pledged_amount} from {campaign.backer_count} backers, "
                f"holds {held_total} from {backers}"
            )
        for reward in campaign.rewards.all():
            taken = held.filter(reward=reward).count()
            if reward.claimed_count != taken:
                problems.append(f"reward {reward.pk} claims {reward.claimed_count}, {taken} pledges hold it")
    for reward in RewardTier.objects.exclude(quantity_limit=None):
        if reward.claimed_count > reward.quantity_limit:
            problems.append(f"reward {reward.pk} oversold: {reward.claimed_count} > {reward.quantity_limit}")
    return problems

"""What a money test looks at: every row a movement of money could touch, and the invariants."""

from django.db.models import Count, F, Sum

from escrow.ledger import account_balances
from escrow.models import GatewayOperation, LedgerEntry, LedgerTransaction, OperationKind, OperationStatus
from escrow.vocabulary import backer_funding_code, campaign_escrow_code, charge_key, pledge_change_charge_key
from pledges.models import Pledge, PledgeAddOn, PledgeChange, PledgeStatus, PledgeStatusChange
from projects.models import AddOn, Campaign, CampaignStatus, RewardTier
from settlement.verification import ledger_verify


def money_state() -> dict:
    """Return a snapshot to compare before and after a refused request: it must not change."""
    return {
        "pledges": sorted(Pledge.objects.values_list("pk", "status", "amount", "reward_id")),
        "pledge_changes": sorted(PledgeChange.objects.values_list("pk", "status")),
        "pledge_status_changes": PledgeStatusChange.objects.count(),
        "ledger_transactions": LedgerTransaction.objects.count(),
        "ledger_entries": LedgerEntry.objects.count(),
        "gateway_operations": sorted(
            GatewayOperation.objects.values_list("idempotency_key", "status", "refunded_amount", "attempts")
        ),
        "campaigns": sorted(Campaign.objects.values_list("pk", "status", "pledged_amount", "backer_count")),
        "rewards": sorted(RewardTier.objects.values_list("pk", "claimed_count")),
        "addons": sorted(AddOn.objects.values_list("pk", "claimed_count")),
        "pledge_addons": sorted(PledgeAddOn.objects.values_list("pledge_id", "addon_id", "quantity")),
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
    """Return what the backer's card is out of pocket for this pledge at the gateway (its raises' charges too)."""
    keys = [charge_key(pledge.pk)] + [
        pledge_change_charge_key(pk)
        for pk in PledgeChange.objects.filter(pledge_id=pledge.pk).values_list("pk", flat=True)
    ]
    charges = GatewayOperation.objects.filter(
        kind=OperationKind.CHARGE, status=OperationStatus.SUCCEEDED, idempotency_key__in=keys
    )
    return sum(charge.amount - charge.refunded_amount for charge in charges)


def invariant_problems() -> list[str]:
    """Return ``ledger_verify()`` plus what a backer or initiator would see on their own page.

    - every pledge's card is out of pocket exactly its amount while held or released, else nothing;
    - a live or suspended campaign shows the total and backer count of its held pledges;
    - a reward tier's claimed count is its held pledges while the campaign runs, never over its limit.
    """
    problems = list(ledger_verify())
    charged = {
        key: amount - refunded
        for key, amount, refunded in GatewayOperation.objects.filter(
            kind=OperationKind.CHARGE, status=OperationStatus.SUCCEEDED
        ).values_list("idempotency_key", "amount", "refunded_amount")
    }
    # A pledge whose amount was raised has a charge per raise besides its own.
    change_keys: dict[int, list[str]] = {}
    for change_id, pledge_id in PledgeChange.objects.values_list("pk", "pledge_id"):
        change_keys.setdefault(pledge_id, []).append(pledge_change_charge_key(change_id))
    for pk, status, amount in Pledge.objects.values_list("pk", "status", "amount"):
        paid = amount if status in (PledgeStatus.HELD, PledgeStatus.RELEASED) else 0
        out = sum(charged.get(key, 0) for key in [charge_key(pk), *change_keys.get(pk, [])])
        if out != paid:
            problems.append(f"pledge {pk} ({status}): card charged {out}, expected {paid}")
    running = Campaign.objects.filter(status__in=[CampaignStatus.LIVE, CampaignStatus.SUSPENDED])
    held = Pledge.objects.filter(status=PledgeStatus.HELD, campaign__in=running)
    totals = {
        row["campaign_id"]: row
        for row in held.values("campaign_id").annotate(total=Sum("amount"), backers=Count("backer_id", distinct=True))
    }
    for pk, shown, backer_count in running.values_list("pk", "pledged_amount", "backer_count"):
        row = totals.get(pk, {"total": 0, "backers": 0})
        if (shown, backer_count) != (row["total"], row["backers"]):
            problems.append(
                f"campaign {pk} shows {shown} from {backer_count} backers, holds {row['total']} from {row['backers']}"
            )
    taken = dict(held.exclude(reward=None).values_list("reward_id").annotate(n=Count("pk")))
    for pk, claimed in RewardTier.objects.filter(campaign__in=running).values_list("pk", "claimed_count"):
        if claimed != taken.get(pk, 0):
            problems.append(f"reward {pk} claims {claimed}, {taken.get(pk, 0)} held pledges have it")
    for pk in RewardTier.objects.filter(claimed_count__gt=F("quantity_limit")).values_list("pk", flat=True):
        problems.append(f"reward {pk} is oversold")
    # An add-on's units likewise: what the held pledges carry while the campaign runs, never over its limit.
    carried = dict(PledgeAddOn.objects.filter(pledge__in=held).values_list("addon_id").annotate(n=Sum("quantity")))
    for pk, claimed in AddOn.objects.filter(campaign__in=running).values_list("pk", "claimed_count"):
        if claimed != carried.get(pk, 0):
            problems.append(f"add-on {pk} claims {claimed}, held pledges carry {carried.get(pk, 0)}")
    for pk in AddOn.objects.filter(claimed_count__gt=F("quantity_limit")).values_list("pk", flat=True):
        problems.append(f"add-on {pk} is oversold")
    return problems

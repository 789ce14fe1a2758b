"""Matched money settling with its campaign: released with it, or returned to its pool."""

from django.utils import timezone

from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import (
    allocation_release_posting,
    allocation_return_posting,
    allocation_settle_account_specs,
)
from projects.models import Campaign

from ..models import (
    Allocation,
    AllocationOutcome,
)


def matching_campaign_settle(*, campaign: Campaign, release: bool) -> int:
    """Release a settling campaign's matched money to its payable, or return it to the pools; return the amount.

    Settlement calls it inside its finishing transaction, holding the campaign's row lock, so
    no round can pay into the campaign meanwhile. Each allocation's posting is keyed by the
    allocation: running it again moves nothing twice.
    """
    now = timezone.now()
    moved = 0
    allocations = list(
        Allocation.objects.select_for_update()
        .filter(campaign_id=campaign.pk, paid_at__isnull=False, settled_at__isnull=True)
        .select_related("round__pool")
        .order_by("id")
    )
    for allocation in allocations:
        pool = allocation.round.pool
        accounts = ledger_accounts_get_or_create(
            specs=allocation_settle_account_specs(pool_id=pool.pk, campaign_id=campaign.pk), currency=pool.currency
        )
        money = {"allocation_id": allocation.pk, "campaign_id": campaign.pk, "amount": allocation.amount}
        if release:
            ledger_post(posting=allocation_release_posting(currency=pool.currency, accounts=accounts, **money))
        else:
            ledger_post(
                posting=allocation_return_posting(pool_id=pool.pk, currency=pool.currency, accounts=accounts, **money)
            )
        allocation.outcome = AllocationOutcome.RELEASED if release else AllocationOutcome.RETURNED
        allocation.settled_at = now
        allocation.save(update_fields=["outcome", "settled_at"])
        moved += allocation.amount
    return moved

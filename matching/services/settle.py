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
from ..selectors import allocation_earned


def matching_campaign_settle(*, campaign: Campaign, release: bool) -> int:
    """Release a settling campaign's matched money to its payable, or return it to the pools.

    Return what is released. A succeeding campaign releases what its allocations still earn
    (``allocation_earned``: the match of pledges cancelled or refunded since the round was paid
    goes back to the pool); a failing one returns everything. Settlement calls it inside its
    finishing transaction, holding the campaign's row lock, so no round can pay into the
    campaign meanwhile. Each allocation's posting is keyed by the
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
        earned = allocation_earned(allocation=allocation) if release else 0
        ids = {"allocation_id": allocation.pk, "campaign_id": campaign.pk}
        if earned:
            ledger_post(
                posting=allocation_release_posting(amount=earned, currency=pool.currency, accounts=accounts, **ids)
            )
        if allocation.amount - earned:
            ledger_post(
                posting=allocation_return_posting(
                    pool_id=pool.pk, amount=allocation.amount - earned, currency=pool.currency, accounts=accounts, **ids
                )
            )
        allocation.outcome = AllocationOutcome.RELEASED if earned else AllocationOutcome.RETURNED
        allocation.returned_amount = allocation.amount - earned
        allocation.settled_at = now
        allocation.save(update_fields=["outcome", "returned_amount", "settled_at"])
        moved += earned
    return moved

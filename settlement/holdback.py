"""The delivery holdback's money: kept at success, then released or refunded tier by tier.

At success a campaign with reward pledges keeps ``fulfilment.selectors.holdback_split`` of them
(payable -> holdback escrow, in settlement's finish transaction, before the fee and payout on
the rest). Once every backer of a shipped tier is decided, that tier's parts are settled: the
upheld ones are refunded to exactly those backers, each never above its part (itself never
above what its pledge paid), then the delivered ones are released to the initiator less the fee
on them. A tier staff declared not delivered (never shipped past its deadline) refunds every
part. Refunds go in bounded batches (``settlement.part_refunds``, as the remainder's), each
gateway first, outside any lock, keyed by pledge, then one short transaction that records and
posts it; the release is keyed by tier and posted with the shipment marked settled. A worker
killed anywhere is finished by beat's sweep, every part refunded and the release paid exactly once.
"""

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from accounts.services import audit_record
from escrow.gateway import get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post_many
from escrow.vocabulary import initiator_payout_code
from escrow.vocabulary_holdback import (
    holdback_account_specs,
    holdback_keep_posting,
    holdback_payout_key,
    holdback_refund_account_specs,
    holdback_refund_charge_key,
    holdback_refund_key,
    holdback_refund_posting,
    holdback_release_postings,
)
from fulfilment.models import DELIVERED_STATUSES, REFUNDED_STATUSES, Delivery, NonDelivery, Shipment
from fulfilment.selectors import (
    holdback_bps_of,
    holdback_refunds_due,
    holdback_split,
    non_deliveries_to_settle,
    reward_pledges_released,
    shipments_ready_to_settle,
)
from fulfilment.services import (
    deliveries_record_refunded,
    holdback_record,
    non_delivery_record_settled,
    shipment_record_settled,
    tier_declare_not_delivered,
)
from pledges.models import Pledge
from projects.models import Campaign

from .part_refunds import PartRefund, PartRefundFlow
from .tranches import fee_split


class HoldbackError(Exception):
    """A tier's holdback cannot be settled without an operator (the gateway refused)."""


HOLDBACK_REFUNDS = PartRefundFlow(
    name="holdback",
    key=holdback_refund_key,
    charge_key=holdback_refund_charge_key,
    account_specs=holdback_refund_account_specs,
    posting=holdback_refund_posting,
    error=HoldbackError,
)


def holdback_keep(*, campaign: Campaign) -> int:
    """Record and post a succeeding campaign's holdback; return it. Idempotent by key.

    Called by ``settlement_finalize`` in its transaction (campaign locked); its amount is the one
    ``amount_released_at_success`` subtracted.
    """
    rows = reward_pledges_released(campaign_id=campaign.pk)
    if not rows:
        return 0
    bps = holdback_bps_of(campaign)
    amount, parts = holdback_split(bps=bps, paid=[row[3] for row in rows])
    holdback = holdback_record(campaign=campaign, bps=bps, amount=amount, rows=rows, parts=parts)
    if holdback.amount:
        accounts = ledger_accounts_get_or_create(
            specs=holdback_account_specs(campaign_id=campaign.pk, initiator_id=campaign.initiator_id),
            currency=campaign.currency,
        )
        ledger_post_many(
            postings=[
                holdback_keep_posting(
                    campaign_id=campaign.pk, amount=holdback.amount, currency=campaign.currency, accounts=accounts
                )
            ]
        )
    return holdback.amount


def holdback_refund_next_batch(*, tier_id: int, batch_size: int | None = None) -> int:
    """Refund the next batch of a tier's parts owed back (upheld reports, or the whole tier declared
    not delivered); return how many it took up (posted here or by a run beside it), 0 once none is left.

    Through ``HOLDBACK_REFUNDS`` (``settlement.part_refunds``): gateway first, outside any lock,
    keyed by pledge; then one short transaction records the deliveries refunded and posts exactly
    those, so a worker killed anywhere sends the same keys again (answered with the first result)
    and no part is posted twice. Raises HoldbackError when the gateway refuses one.
    """
    batch_size = batch_size or settings.HOLDBACK_REFUND_BATCH_SIZE
    rows = list(
        holdback_refunds_due(tier_id=tier_id)
        .order_by("id")
        .values_list("id", "pledge_id", "backer_id", "part", "campaign_id")[:batch_size]
    )
    if not rows:
        return 0
    campaign = Campaign.objects.get(pk=rows[0][4])
    charges = dict(Pledge.objects.filter(pk__in=[r[1] for r in rows]).values_list("pk", "payment_reference"))
    refunds = {
        delivery_id: PartRefund(
            pledge_id=pledge_id, backer_id=backer_id, amount=part, charge_reference=charges[pledge_id]
        )
        for delivery_id, pledge_id, backer_id, part, _ in rows
    }
    HOLDBACK_REFUNDS.send(list(refunds.values()))
    with transaction.atomic(durable=True):
        fresh = deliveries_record_refunded(delivery_ids=list(refunds))
        HOLDBACK_REFUNDS.post(
            campaign_id=campaign.pk, currency=campaign.currency, refunds=[refunds[delivery_id] for delivery_id in fresh]
        )
    return len(rows)


def _refund_all(tier_id: int) -> int:
    """Refund every part of the tier owed back, batch by batch; return what the tier refunded in all."""
    while holdback_refund_next_batch(tier_id=tier_id):
        pass
    return (
        Delivery.objects.filter(tier_id=tier_id, status__in=REFUNDED_STATUSES).aggregate(t=Sum("refunded_amount"))["t"]
        or 0
    )


def holdback_settle_tier(*, tier_id: int) -> Shipment | NonDelivery | None:
    """Settle one tier's holdback once it is decided; return its shipment (or non-delivery).

    A shipped tier is decided once every backer of it is: the upheld parts are refunded in
    batches, then the delivered ones are released to the initiator less the fee on them. A tier
    declared not delivered refunds every part. Returns None while a delivery is still open.
    Idempotent: a settled tier is returned as it is.
    """
    declaration = non_deliveries_to_settle().filter(tier_id=tier_id).first()
    if declaration is not None:
        return _settle_not_delivered(declaration)
    shipment = shipments_ready_to_settle().filter(tier_id=tier_id).select_related("campaign").first()
    if shipment is None:
        return (
            Shipment.objects.filter(tier_id=tier_id, settled_at__isnull=False).first()
            or NonDelivery.objects.filter(tier_id=tier_id, settled_at__isnull=False).first()
        )
    campaign = shipment.campaign
    refunded = _refund_all(tier_id)
    released = (
        Delivery.objects.filter(tier_id=tier_id, status__in=DELIVERED_STATUSES).aggregate(t=Sum("part"))["t"] or 0
    )
    split = fee_split(campaign=campaign, released=released)
    if split and split.net:
        result = get_gateway().payout(
            idempotency_key=holdback_payout_key(tier_id),
            amount=split.net,
            currency=campaign.currency,
            destination=initiator_payout_code(campaign.initiator_id),
        )
        if not result.ok:
            raise HoldbackError(f"Holdback payout of reward {tier_id} failed: {result.code}")
    with transaction.atomic(durable=True):
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        shipment = Shipment.objects.select_for_update().get(pk=shipment.pk)
        if shipment.settled_at is not None:
            return shipment
        if split:
            accounts = ledger_accounts_get_or_create(
                specs=holdback_account_specs(campaign_id=campaign.pk, initiator_id=campaign.initiator_id),
                currency=campaign.currency,
            )
            ledger_post_many(
                postings=holdback_release_postings(
                    tier_id=tier_id,
                    initiator_id=campaign.initiator_id,
                    released=split.released,
                    fee=split.fee,
                    bps=split.bps,
                    net=split.net,
                    campaign_id=campaign.pk,
                    currency=campaign.currency,
                    accounts=accounts,
                )
            )
        fee = split.fee if split else 0
        shipment_record_settled(shipment=shipment, released=released, fee=fee, refunded=refunded)
        audit_record(
            actor=None,
            action="holdback_settle",
            obj=shipment,
            details={"released": released, "fee": fee, "refunded": refunded},
        )
    return shipment


def holdback_declare_not_delivered(*, tier_id: int, actor, reason: str, enqueue: bool = True) -> NonDelivery:
    """Finance declares a reward tier not delivered and its backers' parts start going back at once.

    The declaration is ``fulfilment.services.tier_declare_not_delivered``'s (its rules, refusals
    and audit event); after it commits, ``settle_holdback_tier`` refunds the tier's parts in
    batches (``holdback_settle_tier``) rather than waiting for beat's sweep, which still finishes
    the work if that task is lost. Returns the declaration as committed, before its refunds.
    """
    declaration = tier_declare_not_delivered(tier_id=tier_id, actor=actor, reason=reason)
    if enqueue:
        transaction.on_commit(lambda: _enqueue_settle(tier_id))
    return declaration


def _enqueue_settle(tier_id: int) -> None:
    from .tasks import settle_holdback_tier  # tasks import this module

    settle_holdback_tier.delay(tier_id)


def _settle_not_delivered(declaration: NonDelivery) -> NonDelivery:
    refunded = _refund_all(declaration.tier_id)
    with transaction.atomic(durable=True):
        declaration = NonDelivery.objects.select_for_update().get(pk=declaration.pk)
        if declaration.settled_at is None:
            non_delivery_record_settled(declaration=declaration, refunded=refunded)
            audit_record(
                actor=None,
                action="holdback_refund_not_delivered",
                obj=declaration,
                details={"refunded": refunded, "tier": declaration.tier_id},
            )
    return declaration


def holdbacks_settle_ready(*, limit: int = 100) -> list[int]:
    """Settle every decided tier: shipped with all backers decided, or declared not delivered
    (beat's sweep, which also finishes one a killed worker left half refunded); return the tiers."""
    tiers = list(non_deliveries_to_settle().order_by("id").values_list("tier_id", flat=True)[:limit])
    tiers += shipments_ready_to_settle().order_by("id").values_list("tier_id", flat=True)[: limit - len(tiers)]
    for tier_id in tiers:
        holdback_settle_tier(tier_id=tier_id)
    return tiers

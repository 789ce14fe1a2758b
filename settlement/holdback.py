"""The delivery holdback's money: kept at success, then released or refunded tier by tier.

At success a campaign with reward pledges keeps ``fulfilment.selectors.holdback_split`` of them
(payable -> holdback escrow, in settlement's finish transaction, before the fee and payout on
the rest). Once every backer of a shipped tier is decided, that tier's parts are settled: the
delivered ones are released to the initiator less the fee on them, the upheld ones are refunded
to exactly those backers, each never above its part (itself never above what its pledge paid).
Gateway first, outside any lock, keyed by tier and by pledge; then one transaction posts it all
and marks the shipment settled, so a crash leaves all or nothing and a rerun finishes it.
"""

from django.db import transaction

from accounts.services import audit_record
from escrow.gateway import RefundRequest, get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post_many
from escrow.vocabulary import initiator_payout_code
from escrow.vocabulary_holdback import (
    holdback_account_specs,
    holdback_keep_posting,
    holdback_payout_key,
    holdback_refund_account_specs,
    holdback_refund_key,
    holdback_refund_posting,
    holdback_release_postings,
)
from fulfilment.models import DELIVERED_STATUSES, Delivery, DeliveryStatus, Shipment
from fulfilment.selectors import holdback_bps_of, holdback_split, reward_pledges_released, shipments_ready_to_settle
from fulfilment.services import holdback_record, shipment_record_settled
from pledges.models import Pledge
from projects.models import Campaign

from .tranches import fee_split


class HoldbackError(Exception):
    """A tier's holdback cannot be settled without an operator (the gateway refused)."""


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


def _tier_parts(tier_id: int):
    deliveries = list(
        Delivery.objects.filter(tier_id=tier_id).values_list("id", "pledge_id", "backer_id", "status", "part")
    )
    released = sum(part for _, _, _, status, part in deliveries if status in DELIVERED_STATUSES)
    refunds = [row for row in deliveries if row[3] == DeliveryStatus.UPHELD and row[4] > 0]
    return released, refunds


def holdback_settle_tier(*, tier_id: int) -> Shipment | None:
    """Settle one shipped tier's holdback once every backer of it is decided; return the shipment.

    Returns None while a delivery is still open. Idempotent: a settled shipment is returned as it is.
    """
    shipment = shipments_ready_to_settle().filter(tier_id=tier_id).select_related("campaign").first()
    if shipment is None:
        return Shipment.objects.filter(tier_id=tier_id, settled_at__isnull=False).first()
    campaign = shipment.campaign
    released, refunds = _tier_parts(tier_id)
    split = fee_split(campaign=campaign, released=released)
    gateway = get_gateway()
    if split and split.net:
        result = gateway.payout(
            idempotency_key=holdback_payout_key(tier_id),
            amount=split.net,
            currency=campaign.currency,
            destination=initiator_payout_code(campaign.initiator_id),
        )
        if not result.ok:
            raise HoldbackError(f"Holdback payout of reward {tier_id} failed: {result.code}")
    if refunds:
        charges = dict(Pledge.objects.filter(pk__in=[r[1] for r in refunds]).values_list("pk", "payment_reference"))
        results = gateway.refund_many(
            requests=[
                RefundRequest(
                    idempotency_key=holdback_refund_key(pledge_id), charge_reference=charges[pledge_id], amount=part
                )
                for _, pledge_id, _, _, part in refunds
            ]
        )
        refused = [(r[1], res.code) for r, res in zip(refunds, results, strict=True) if not res.ok]
        if refused:
            raise HoldbackError(f"The gateway refused holdback refunds for pledges {refused[:10]}")
    with transaction.atomic(durable=True):
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        shipment = Shipment.objects.select_for_update().get(pk=shipment.pk)
        if shipment.settled_at is not None:
            return shipment
        specs = set(holdback_account_specs(campaign_id=campaign.pk, initiator_id=campaign.initiator_id))
        for _, _, backer_id, _, _ in refunds:
            specs.update(holdback_refund_account_specs(campaign_id=campaign.pk, backer_id=backer_id))
        accounts = ledger_accounts_get_or_create(specs=sorted(specs), currency=campaign.currency)
        money = {"campaign_id": campaign.pk, "currency": campaign.currency, "accounts": accounts}
        postings = []
        if split:
            postings += holdback_release_postings(
                tier_id=tier_id,
                initiator_id=campaign.initiator_id,
                released=split.released,
                fee=split.fee,
                bps=split.bps,
                net=split.net,
                **money,
            )
        postings += [
            holdback_refund_posting(pledge_id=pledge_id, backer_id=backer_id, amount=part, **money)
            for _, pledge_id, backer_id, _, part in refunds
        ]
        if postings:
            ledger_post_many(postings=postings)
        refunded = sum(r[4] for r in refunds)
        shipment_record_settled(
            shipment=shipment,
            released=released,
            fee=split.fee if split else 0,
            refunded=refunded,
            refunds=[(r[0], r[4]) for r in refunds],
        )
        audit_record(
            actor=None,
            action="holdback_settle",
            obj=shipment,
            details={"released": released, "fee": split.fee if split else 0, "refunded": refunded},
        )
    return shipment


def holdbacks_settle_ready(*, limit: int = 100) -> list[int]:
    """Settle every shipped tier whose backers are all decided (beat's sweep); return the tiers."""
    done = []
    for tier_id in shipments_ready_to_settle().order_by("id").values_list("tier_id", flat=True)[:limit]:
        holdback_settle_tier(tier_id=tier_id)
        done.append(tier_id)
    return done

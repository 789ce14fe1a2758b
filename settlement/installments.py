"""Installments of pledges paid over time, as beat runs them; and the ones paid after release.

``installments_run_due`` is beat's ``charge_due_installments``: it claims due installments with
SKIP LOCKED, charges each outside any lock and records it (``pledges.installments``). An
installment whose pledge was already released goes to the initiator at once, minus the platform
fee split as settlement splits it (``fee_split``, the campaign's fee agreed at launch):
``installment_pay_out`` sends the net through the gateway first (keyed by installment, outside
any lock), then posts one ledger transaction (backer -> revenue + initiator) under the same key,
so a worker killed in between finishes it on the next run with nothing paid twice.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from escrow.gateway import get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import initiator_payout_code
from escrow.vocabulary_installments import (
    installment_payout_account_specs,
    installment_payout_key,
    installment_payout_posting,
)
from pledges.installments import (
    installment_charge,
    installment_record_charge,
    installment_record_payout,
    installments_claim_due,
)
from pledges.models import InstallmentStatus, PledgeInstallment

from .tranches import fee_split

logger = logging.getLogger(__name__)


class InstallmentPayoutError(Exception):
    """The gateway refused an installment's payout to the initiator; the next run tries again."""


def installment_pay_out(*, installment_id: int) -> PledgeInstallment:
    """Pay a charged installment of a released pledge to its initiator, minus the fee; return it.

    Idempotent: the payout and the ledger transaction share the installment's key, and an
    installment no longer "charged" is left alone. Raises InstallmentPayoutError if the gateway
    refuses the payout (the installment stays "charged" for the next run).
    """
    installment = PledgeInstallment.objects.select_related("pledge__campaign").get(pk=installment_id)
    if installment.status != InstallmentStatus.CHARGED:
        return installment
    pledge, campaign = installment.pledge, installment.pledge.campaign
    split = fee_split(campaign=campaign, released=installment.amount)
    key = installment_payout_key(installment.pk)
    if split.net:
        result = get_gateway().payout(
            idempotency_key=key,
            amount=split.net,
            currency=pledge.currency,
            destination=initiator_payout_code(campaign.initiator_id),
        )
        if not result.ok:
            raise InstallmentPayoutError(f"Payout of installment {installment.pk} failed: {result.code}")
    ids = {"backer_id": pledge.backer_id, "initiator_id": campaign.initiator_id}
    with transaction.atomic(durable=True):
        locked = PledgeInstallment.objects.select_for_update().get(pk=installment.pk)
        if locked.status != InstallmentStatus.CHARGED:
            return locked
        accounts = ledger_accounts_get_or_create(
            specs=installment_payout_account_specs(**ids), currency=pledge.currency
        )
        record = ledger_post(
            posting=installment_payout_posting(
                installment_id=installment.pk,
                amount=installment.amount,
                fee=split.fee,
                currency=pledge.currency,
                accounts=accounts,
                **ids,
            )
        )
        installment_record_payout(installment_id=installment.pk, record=record)
    installment.refresh_from_db()
    return installment


def installments_run_due(*, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Charge the installments due now and pay out those of released pledges; return counts.

    Also finishes installments a killed worker left charged but not paid out. Safe to run twice
    or at the same time (the claim skips locked rows; every step is keyed).
    """
    now = now or timezone.now()
    counts = {"claimed": 0, "paid": 0, "declined": 0, "paid_out": 0}
    for installment_id in installments_claim_due(now=now, limit=limit):
        counts["claimed"] += 1
        result = installment_charge(installment_id=installment_id)
        installment = installment_record_charge(installment_id=installment_id, result=result)
        if installment.status == InstallmentStatus.PAID:
            counts["paid"] += 1
        elif not result.ok and not result.transient:
            counts["declined"] += 1
    waiting = PledgeInstallment.objects.filter(status=InstallmentStatus.CHARGED).order_by("id")
    for installment_id in waiting.values_list("pk", flat=True)[:limit]:
        try:
            if installment_pay_out(installment_id=installment_id).status == InstallmentStatus.PAID:
                counts["paid_out"] += 1
        except InstallmentPayoutError:
            logger.exception("Installment %s could not be paid out; retried on the next run", installment_id)
    return counts

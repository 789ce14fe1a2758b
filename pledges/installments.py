"""Pay over time: a pledge of at least PAY_OVER_TIME_MIN_AMOUNT paid in 3 monthly installments.

The pledge's ``amount`` is the whole pledged, counted towards the goal from the start (as
Kickstarter's Pledge Over Time does). It is split in 3 exact parts (``installment_split``: the
remainder cents on the first). The first is the pledge's own charge and hold; the next two fall
due one and two months after the pledge. Escrow holds only what was paid: ``Pledge.unheld_amount``
is the part not in escrow, and everything that holds, releases or refunds a pledge counts
``Pledge.held_amount``.

Rows, not broker tasks: beat's ``charge_due_installments`` (settlement) claims the due rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` (``installments_claim_due``), charges each outside any lock
under a key per attempt (``installment_charge``), and records the result in one short
transaction that locks the pledge, then the installment (``installment_record_charge``), the
order settlement uses. A worker killed after its claim leaves the row "charging": after
INSTALLMENT_CLAIM_STALE it is claimed again and charged again under the *same* key, which the
gateway answers with the first charge's result, so each attempt is charged exactly once.

Where the money goes: while the pledge is held, into escrow (one ledger transaction each, with
the pledge's reference); once the pledge is released, to the initiator at once, minus the fee
(``settlement.installments``); a pledge refunded or cancelled cancels its plan (nothing more is
charged, and a charge already in flight is given back). A declined installment is retried 7
and 14 days after it fell due; the third decline ends the plan (``_plan_end``): the pledge
becomes what was paid, with the best reward that covers it (or none), audited, and the backer
is e-mailed.
"""

import calendar
import datetime
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import format_amount
from escrow.gateway import GatewayResult, get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.models import LedgerTransaction
from escrow.vocabulary_installments import (
    installment_charge_key,
    installment_hold_account_specs,
    installment_hold_posting,
    installment_refund_key,
)
from projects.models import Campaign, CampaignStatus, FundingModel, RewardTier
from projects.services import campaign_figures_changed, campaign_take_from_totals

from .models import (
    InstallmentPaidTo,
    InstallmentStatus,
    Pledge,
    PledgeInstallment,
    PledgeStatus,
)

logger = logging.getLogger(__name__)

INSTALLMENT_COUNT = 3
# Days after an installment fell due that a declined one is tried again; the last decline ends the plan.
RETRY_DAYS = (7, 14)
# A claimed installment whose worker went quiet this long is claimed again (and charged under the same key).
INSTALLMENT_CLAIM_STALE = timedelta(minutes=5)
# An installment of a held pledge whose campaign is closing waits this long for settlement to finish.
SETTLING_WAIT = timedelta(hours=1)
_CHARGE_TRIES = 3


def installment_split(amount: int) -> list[int]:
    """Return the 3 installments of ``amount``: equal parts, the remainder cents on the first; they sum to it."""
    part = amount // INSTALLMENT_COUNT
    return [amount - part * (INSTALLMENT_COUNT - 1), *([part] * (INSTALLMENT_COUNT - 1))]


def _add_months(moment: datetime.datetime, months: int) -> datetime.datetime:
    """Return ``moment`` ``months`` later: the same day of the month, or that month's last."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def pay_over_time_check(*, campaign: Campaign, whole: int, currency: str, from_balance: int, addons) -> None:
    """Refuse a request to pay over time that the pledge cannot take (InvalidInput); no database access.

    ``whole`` is what the pledge would charge in all (with shipping). Only card pledges of at least
    PAY_OVER_TIME_MIN_AMOUNT, without add-ons or a part from the balance, on a campaign that is not a loan.
    """
    minimum = settings.PAY_OVER_TIME_MIN_AMOUNT
    if whole < minimum:
        raise InvalidInput(
            _("Pledges of at least %(minimum)s can be paid in 3 monthly installments.")
            % {"minimum": format_amount(minimum, currency)},
            code="below_pay_over_time_minimum",
            field="pay_over_time",
        )
    if campaign.funding_model == FundingModel.DEBT or from_balance:
        raise InvalidInput(
            _("A loan is paid at once: installments are for rewards and support."),
            code="pay_over_time_not_offered",
            field="pay_over_time",
        )
    if addons:
        raise InvalidInput(
            _("Pledges with add-ons are paid at once: remove the add-ons to pay in installments."),
            code="pay_over_time_not_offered",
            field="pay_over_time",
        )


def installments_create(*, pledge: Pledge, payment_token: str) -> list[PledgeInstallment]:
    """Write a new pending pledge's 3 installments (inside the caller's transaction); return them.

    The first is being charged with the pledge; the others wait until the pledge is held
    (``installments_first_paid`` sets when they are next tried).
    """
    start = pledge.created_at
    rows = [
        PledgeInstallment(
            pledge=pledge,
            number=number,
            amount=amount,
            due_at=_add_months(start, number - 1),
            status=InstallmentStatus.CHARGING if number == 1 else InstallmentStatus.SCHEDULED,
            attempts=1 if number == 1 else 0,
            claimed_at=start if number == 1 else None,
            payment_token=payment_token[:255],
        )
        for number, amount in enumerate(installment_split(pledge.amount), start=1)
    ]
    return PledgeInstallment.objects.bulk_create(rows)


def installments_first_paid(*, pledge: Pledge, transaction_record: LedgerTransaction) -> None:
    """Mark the first installment paid by the pledge's hold, and schedule the others (caller's transaction)."""
    now = timezone.now()
    PledgeInstallment.objects.filter(pledge_id=pledge.pk, number=1).update(
        status=InstallmentStatus.PAID,
        paid_to=InstallmentPaidTo.ESCROW,
        paid_at=now,
        ledger_transaction=transaction_record,
        charge_reference=pledge.payment_reference[:64],
    )
    PledgeInstallment.objects.filter(pledge_id=pledge.pk, number__gt=1, next_attempt_at__isnull=True).update(
        next_attempt_at=F("due_at")
    )


def installments_cancel(*, pledge_ids: list[int]) -> int:
    """Cancel the installments not yet charged of pledges returned to their backers (or failed); return how many.

    One UPDATE, in the caller's transaction (which holds the pledges' locks). An installment being
    charged at that moment is given back when its result is recorded (``installment_record_charge``).
    """
    if not pledge_ids:
        return 0
    # The first installment is "charging" only while the pledge's own charge is: a failed pledge cancels it too.
    open_rows = Q(status=InstallmentStatus.SCHEDULED) | Q(status=InstallmentStatus.CHARGING, number=1)
    return PledgeInstallment.objects.filter(open_rows, pledge_id__in=pledge_ids).update(
        status=InstallmentStatus.CANCELLED, next_attempt_at=None
    )


def installments_claim_due(*, now: datetime.datetime | None = None, limit: int = 100) -> list[int]:
    """Claim installments due (or whose worker went quiet) with SKIP LOCKED; return their ids.

    Each claimed row is marked "charging" (a new attempt: the attempt count, hence the charge
    key, goes up) and committed before anything is charged, so two workers never charge the
    same one. A row claimed before and gone stale keeps its attempt (and key). Installments of a
    held pledge whose campaign is no longer live wait: settlement decides where their money goes.
    """
    now = now or timezone.now()
    due = Q(status=InstallmentStatus.SCHEDULED, next_attempt_at__lte=now) | Q(
        status=InstallmentStatus.CHARGING, claimed_at__lte=now - INSTALLMENT_CLAIM_STALE
    )
    with transaction.atomic(durable=True):
        rows = list(
            PledgeInstallment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(due, number__gt=1)  # the first is the pledge's own charge (pledge reconciliation)
            .exclude(Q(pledge__status=PledgeStatus.HELD) & ~Q(pledge__campaign__status=CampaignStatus.LIVE))
            .order_by("next_attempt_at", "id")[:limit]
        )
        fresh = [row.pk for row in rows if row.status == InstallmentStatus.SCHEDULED]
        stale = [row.pk for row in rows if row.status == InstallmentStatus.CHARGING]
        if fresh:
            PledgeInstallment.objects.filter(pk__in=fresh).update(
                status=InstallmentStatus.CHARGING, attempts=F("attempts") + 1, claimed_at=now
            )
        if stale:
            PledgeInstallment.objects.filter(pk__in=stale).update(claimed_at=now)
    return [row.pk for row in rows]


def installment_charge(*, installment_id: int) -> GatewayResult:
    """Charge a claimed installment through the gateway (no lock held), under its attempt's key.

    Transient failures are retried a few times with the same key; a charge already made under
    the key (a worker that died after charging) is answered with its result, not made again.
    """
    installment = PledgeInstallment.objects.select_related("pledge").get(pk=installment_id)
    key = installment_charge_key(installment.pk, installment.attempts)
    gateway = get_gateway()
    result = GatewayResult(ok=False, transient=True)
    for attempt in range(_CHARGE_TRIES):
        result = gateway.charge(
            idempotency_key=key,
            amount=installment.amount,
            currency=installment.pledge.currency,
            token=installment.payment_token,
        )
        if not result.transient:
            break
        time.sleep(0.05 * (attempt + 1))
    return result


def installment_record_charge(*, installment_id: int, result: GatewayResult) -> PledgeInstallment:
    """Record a claimed installment's charge; return the installment.

    Locks the pledge, then the installment. Idempotent: an installment no longer "charging" was
    recorded by someone else and is left alone. Paid while the pledge is held and its campaign
    live: one ledger transaction into escrow, and the pledge holds that much more. Paid after the
    pledge was released: "charged", for ``settlement.installments`` to pay out to the initiator.
    Paid for a pledge refunded or cancelled meanwhile (or held by a campaign now closing): given
    back at the gateway after commit (cancelled, or tried again once settlement is done).
    Declined: tried again 7 and 14 days after it fell due; the third decline ends the plan.
    A transient failure leaves it "charging": the next claim after INSTALLMENT_CLAIM_STALE retries the key.
    """
    if result.transient:
        return PledgeInstallment.objects.get(pk=installment_id)
    give_back = None
    with transaction.atomic(durable=True):
        pledge_id = PledgeInstallment.objects.values_list("pledge_id", flat=True).get(pk=installment_id)
        pledge = Pledge.objects.select_for_update().get(pk=pledge_id)
        installment = PledgeInstallment.objects.select_for_update().get(pk=installment_id)
        if installment.status != InstallmentStatus.CHARGING:
            return installment
        now = timezone.now()
        if result.ok:
            installment.charge_reference = result.reference[:64]
            if pledge.status == PledgeStatus.HELD and _campaign_live_locked(pledge.campaign_id):
                _hold_in_escrow(pledge=pledge, installment=installment, now=now)
            elif pledge.status == PledgeStatus.HELD:
                # The campaign closed while this was charged: settlement fixes where held money goes.
                give_back = result.reference
                installment.status = InstallmentStatus.SCHEDULED
                installment.next_attempt_at = now + SETTLING_WAIT
            elif pledge.status == PledgeStatus.RELEASED:
                installment.status = InstallmentStatus.CHARGED
            else:
                give_back = result.reference
                installment.status = InstallmentStatus.CANCELLED
                installment.next_attempt_at = None
        else:
            installment.failure_code = result.code[:40]
            installment.failure_message = result.message[:255]
            installment.declines += 1
            declines = installment.declines
            if pledge.status not in (PledgeStatus.HELD, PledgeStatus.RELEASED):
                installment.status = InstallmentStatus.CANCELLED
                installment.next_attempt_at = None
            elif declines <= len(RETRY_DAYS):
                installment.status = InstallmentStatus.SCHEDULED
                installment.next_attempt_at = installment.due_at + timedelta(days=RETRY_DAYS[declines - 1])
            else:
                installment.status = InstallmentStatus.FAILED
                installment.next_attempt_at = None
                installment.save()
                _plan_end(pledge=pledge, failed=installment)
        installment.save()
    if give_back:
        refund = get_gateway().refund(
            idempotency_key=installment_refund_key(installment.pk),
            charge_reference=give_back,
            amount=installment.amount,
        )
        if not refund.ok:
            logger.error("Giving back installment %s failed at the gateway: %s", installment.pk, refund.code)
    return installment


def _campaign_live_locked(campaign_id: int) -> bool:
    """Return whether the campaign is live, holding its row lock until commit (after the pledge's, as everywhere).

    Closing takes the same lock, so an installment is either in escrow before the campaign
    closes (and settled with it) or recorded after (and given back): never both.
    """
    status = Campaign.objects.select_for_update().filter(pk=campaign_id).values_list("status", flat=True).first()
    return status == CampaignStatus.LIVE


def _hold_in_escrow(*, pledge: Pledge, installment: PledgeInstallment, now) -> None:
    ids = {"backer_id": pledge.backer_id, "campaign_id": pledge.campaign_id}
    accounts = ledger_accounts_get_or_create(specs=installment_hold_account_specs(**ids), currency=pledge.currency)
    record = ledger_post(
        posting=installment_hold_posting(
            installment_id=installment.pk,
            pledge_id=pledge.pk,
            amount=installment.amount,
            currency=pledge.currency,
            accounts=accounts,
            **ids,
        )
    )
    Pledge.objects.filter(pk=pledge.pk).update(unheld_amount=F("unheld_amount") - installment.amount)
    pledge.unheld_amount -= installment.amount
    installment.status = InstallmentStatus.PAID
    installment.paid_to = InstallmentPaidTo.ESCROW
    installment.paid_at = now
    installment.ledger_transaction = record


def installment_record_payout(*, installment_id: int, record: LedgerTransaction) -> bool:
    """Mark a charged installment paid to the initiator by ``record``, its one ledger transaction.

    Call inside a transaction.

    Returns False (nothing written) if it is no longer "charged": someone else recorded it.
    """
    return (
        PledgeInstallment.objects.filter(pk=installment_id, status=InstallmentStatus.CHARGED).update(
            status=InstallmentStatus.PAID,
            paid_to=InstallmentPaidTo.INITIATOR,
            paid_at=timezone.now(),
            ledger_transaction=record,
        )
        == 1
    )


def _best_reward(*, campaign_id: int, pledged: int, shipping: int, current: RewardTier | None) -> RewardTier | None:
    """Return the reward ``pledged`` covers best: the current one if it still does, else the dearest that does."""

    def covered(reward: RewardTier) -> bool:
        return reward.minimum_amount <= pledged - (shipping if reward.ships else 0)

    if current is not None and covered(current):
        return current
    below = current.minimum_amount if current is not None else None
    candidates = RewardTier.objects.filter(campaign_id=campaign_id, minimum_amount__lte=pledged).order_by(
        "-minimum_amount", "id"
    )
    if below is not None:
        candidates = candidates.filter(minimum_amount__lt=below)
    return next((reward for reward in candidates if covered(reward) and not reward.sold_out), None)


def _plan_end(*, pledge: Pledge, failed: PledgeInstallment) -> None:
    """End the locked pledge's plan after its last decline: it becomes what was paid (caller's transaction).

    The rest of the plan is cancelled; the pledge's amount becomes the installments paid, its
    reward the best that amount covers (or none: the slot is freed), the campaign's total drops
    by the difference while it is live, audited ("pledge_installments_ended"); the backer is
    e-mailed after commit.
    """
    from .services import _reward_claim_slot, _reward_free_slot  # services import this module

    PledgeInstallment.objects.filter(pledge_id=pledge.pk, status=InstallmentStatus.SCHEDULED).update(
        status=InstallmentStatus.CANCELLED, next_attempt_at=None
    )
    paid = list(
        PledgeInstallment.objects.filter(
            pledge_id=pledge.pk, status__in=[InstallmentStatus.PAID, InstallmentStatus.CHARGED]
        ).values_list("amount", "paid_to", "status")
    )
    new_amount = sum(amount for amount, _paid_to, _status in paid)
    in_escrow = sum(
        amount for amount, paid_to, status in paid if status == InstallmentStatus.PAID and paid_to == "escrow"
    )
    old_amount, old_reward = pledge.amount, pledge.reward
    reward = _best_reward(
        campaign_id=pledge.campaign_id, pledged=new_amount, shipping=pledge.shipping_amount, current=old_reward
    )
    if (
        reward is not None
        and reward.pk != pledge.reward_id
        and not _reward_claim_slot(reward_id=reward.pk, in_window=False)
    ):
        reward = None  # its last slot went meanwhile
    if reward is None or reward.pk != pledge.reward_id:
        _reward_free_slot(reward_id=pledge.reward_id)
    pledge.reward = reward
    if reward is None or not reward.ships:
        pledge.shipping_country, pledge.shipping_amount = "", 0  # nothing ships: what was paid is all support
    pledge.amount = new_amount
    pledge.unheld_amount = new_amount - in_escrow
    pledge.save(update_fields=["reward", "shipping_country", "shipping_amount", "amount", "unheld_amount"])
    if pledge.status == PledgeStatus.HELD:
        campaign_take_from_totals(
            campaign_id=pledge.campaign_id, amount=old_amount - new_amount, open_for_pledges_only=False
        )
        campaign_figures_changed(campaign_id=pledge.campaign_id)
    audit_record(
        actor=None,
        action="pledge_installments_ended",
        obj=pledge,
        reason=f"installment {failed.number} declined {failed.declines} times: {failed.failure_code}",
        details={
            "from_amount": old_amount,
            "to_amount": new_amount,
            "from_reward": old_reward.pk if old_reward else None,
            "to_reward": reward.pk if reward else None,
            "currency": pledge.currency,
        },
    )
    pledge_id = pledge.pk
    transaction.on_commit(lambda: _enqueue_plan_ended_email(pledge_id))


def _enqueue_plan_ended_email(pledge_id: int) -> None:
    from .tasks import send_installments_ended  # tasks import the notifications, which import this app's models

    send_installments_ended.delay(pledge_id)

"""Changing a held pledge: its amount and its reward, in one step on the same pledge.

As on Kickstarter, a backer has one pledge per campaign and manages it: the pledge keeps its
number and a ``PledgeChange`` records each change (from, to, who, when, the gateway operations).

- More money is charged as the difference, under a key of the change, outside any row lock; only
  once the gateway said yes does one transaction post the difference to escrow and update the
  pledge. A crash in between is finished by ``pledge_changes_reconcile`` (the sweeper), which
  asks the gateway what happened under the same key, exactly as the request would have.
- Less money is refunded as the difference: one transaction posts it out of escrow and updates
  the pledge, then the partial refunds go to the gateway (newest charge first, never more than a
  charge has left), each under its own key; the sweeper resends any the gateway never confirmed.
- The new reward's slot is claimed with the same conditional UPDATE a new pledge's hold uses,
  before any charge; the old one is freed when the change is made (or the new one when it fails).

Lock order: pledge row, then reward rows (in id order), then campaign row, as elsewhere in pledges.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crowdfund_site.exceptions import Conflict, InvalidInput, NotFound, PaymentDeclined, PaymentUnavailable
from crowdfund_site.money import check_amount, format_amount
from escrow.gateway import GatewayResult, get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import (
    pledge_change_account_specs,
    pledge_change_charge_key,
    pledge_change_posting,
    pledge_change_refund_key,
    pledge_topup_refund_key,
)
from projects.models import Campaign, RewardTier
from projects.services import campaign_figures_changed, campaign_take_from_totals

from .addons import (
    addons_to_total,
    pledge_addons_apply_change,
    pledge_addons_change_failed,
    pledge_addons_claim_change,
    pledge_addons_plan_change,
)
from .models import Pledge, PledgeChange, PledgeChangeStatus, PledgeStatus
from .pledge_checks import pledge_checks_run
from .selectors import pledge_charges_remaining
from .services import (
    _claim_refused,
    _clean_idempotency_key,
    _enqueue_email,
    _reward_claim_slot,
    _reward_free_slot,
)

logger = logging.getLogger(__name__)

CHARGE_ATTEMPTS = 3
# Failure codes of a change that mean "the change was refused", not "the card was declined".
# Older unconfirmed partial refunds need an operator, as settlement's own refunds do.
REFUND_RESEND_WITHIN = timedelta(days=7)
CHANGE_REFUSED_CODES = {"campaign_closed", "pledge_not_held", "below_reward_minimum", "sold_out"}


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()  # ``reward=UNCHANGED``: keep the pledge's reward


def pledge_change(
    *,
    pledge: Pledge,
    actor,
    idempotency_key: str,
    amount: int | None = None,
    reward: RewardTier | _Unchanged | None = UNCHANGED,
    payment_token: str = "",
    addons: dict[int, int] | None = None,
    client_ip: str | None = None,
) -> Pledge:
    """Change the amount, reward and/or add-ons of the backer's held pledge before the deadline; return it.

    ``amount`` None keeps the amount; ``reward`` UNCHANGED keeps the reward (None: no reward).
    ``addons`` (``{add-on id: quantity}``) sets the quantities it names (0 removes one; the others
    stay); ``amount`` is then the pledge without its add-ons, which come on top as at pledge time
    (``Pledge.amount_without_addons``), and the difference of the whole is charged or refunded.
    The units a change adds are claimed with its reward's slot, never oversold (Conflict
    ``addon_sold_out``); those it drops are freed when it is made.
    A higher amount charges the difference to ``payment_token``; a lower one refunds the
    difference. Idempotent per (pledge, idempotency_key): the same request again returns the
    same outcome and moves no money twice; the same key with another body raises Conflict
    ``idempotency_key_reused``. One change at a time: another one while a charge is still being
    settled raises Conflict ``change_in_progress``.

    Only the backer may (anyone else gets NotFound). Raises InvalidInput (amount invalid or
    above PLEDGE_MAX_MINOR, nothing to change, reward of another campaign or above the amount,
    no card for an increase), Conflict (pledge not held, campaign closed, reward sold out),
    PaymentDeclined (pledge unchanged) or PaymentUnavailable (retry with the same key).

    Once made and committed, one Celery message sends the backer the change's e-mail and runs
    what other apps added (``pledges.followups``: the fraud checks, given ``client_ip``).
    """
    key = _clean_idempotency_key(idempotency_key)
    current = Pledge.objects.select_related("campaign", "reward").get(pk=pledge.pk)
    if actor is None or actor.pk != current.backer_id:
        raise NotFound(_("No such pledge."), code="not_found")
    addons_to = pledge_addons_plan_change(pledge=current, requested=addons) if addons else None
    to_addons_amount = current.addons_amount if addons_to is None else addons_to_total(addons_to)
    to_amount = (current.amount_without_addons if amount is None else amount) + to_addons_amount
    to_reward_id = current.reward_id if isinstance(reward, _Unchanged) else (reward.pk if reward else None)
    payment_token = (payment_token or "").strip()
    fingerprint = f"{to_amount}|{to_reward_id or ''}|{payment_token}"
    if addons:
        # What was asked, not what it changes: a retry after the change was made asks the same.
        fingerprint += "|" + ",".join(f"{i}x{q}" for i, q in sorted(addons.items(), key=lambda item: str(item[0])))
    fingerprint = fingerprint[:255]
    change = PledgeChange.objects.filter(pledge_id=current.pk, idempotency_key=key).first()
    if change is None:
        to_reward = _change_check(
            pledge=current,
            amount=to_amount,
            reward_id=to_reward_id,
            payment_token=payment_token,
            addons_amount=to_addons_amount,
            addons_changed=addons_to is not None,
        )
        pledge_checks_run(backer=actor, campaign=current.campaign, amount=to_amount, replaces=current)
        change = _change_reserve(
            pledge=current,
            amount=to_amount,
            reward=to_reward,
            key=key,
            fingerprint=fingerprint,
            actor=actor,
            addons_to=addons_to,
            client_ip=client_ip,
        )
    if change.request_fingerprint != fingerprint:
        raise Conflict(
            "This idempotency key was already used for a different change.",
            code="idempotency_key_reused",
            field="idempotency_key",
        )
    if change.status == PledgeChangeStatus.PENDING:
        result = _charge_difference(change=change, pledge=current, token=payment_token)
        change = _change_complete(change_id=change.pk, result=result, actor=actor, client_ip=client_ip)
    if change.status == PledgeChangeStatus.DONE:
        _change_send_refunds(change=change)
    return _change_outcome(change)


def _change_outcome(change: PledgeChange) -> Pledge:
    if change.status == PledgeChangeStatus.FAILED:
        if change.failure_code in CHANGE_REFUSED_CODES:
            raise Conflict(change.failure_message, code=change.failure_code)
        raise PaymentDeclined(change.failure_message or _("The payment was declined."), code=change.failure_code)
    if change.status == PledgeChangeStatus.PENDING:
        raise PaymentUnavailable(
            _("The payment processor had a temporary problem. Please try again."), code="payment_processing_error"
        )
    return Pledge.objects.select_related("campaign", "reward").get(pk=change.pledge_id)


def reward_needs_more(*, reward: RewardTier, amount: int) -> bool:
    """Whether a pledge of ``amount`` must grow to take ``reward`` (the page then offers its minimum)."""
    return amount < reward.minimum_amount


def _change_check(
    *,
    pledge: Pledge,
    amount: int,
    reward_id: int | None,
    payment_token: str,
    addons_amount: int = 0,
    addons_changed: bool = False,
) -> RewardTier | None:
    """Refuse a change that cannot go through, before anything is written or charged; return the new reward.

    ``amount`` is the new whole, ``addons_amount`` (of it) what the add-ons will cost.
    """
    if pledge.status != PledgeStatus.HELD:
        raise Conflict(
            _("This pledge is %(status)s, so it cannot change.") % {"status": pledge.get_status_display().lower()},
            code="not_held",
        )
    if not pledge.campaign.is_open_for_pledges:
        raise Conflict(_("The campaign has ended, so this pledge can no longer be changed."), code="campaign_closed")
    check_amount(amount, pledge.currency, max_minor=settings.PLEDGE_MAX_MINOR)
    if pledge.from_balance and amount != pledge.amount:
        # Its refunds split between the balance and the card's charges; a new amount would need
        # both redone. Cancelling gives the balance part back to the balance, to lend again.
        raise Conflict(
            _(
                "Part of this loan was paid from your balance, so its amount cannot change. Cancel it (the "
                "balance part goes back to your balance) and lend again."
            ),
            code="paid_from_balance",
        )
    reward = pledge.reward
    if reward_id != pledge.reward_id:
        reward = RewardTier.objects.filter(pk=reward_id, campaign_id=pledge.campaign_id).first() if reward_id else None
        if reward_id and reward is None:
            raise InvalidInput(_("That reward is not part of this campaign."), code="invalid_reward", field="reward")
        if pledge.shipping_country or (reward is not None and reward.ships):
            raise _shipping_reward_change_refused()
    if amount == pledge.amount and reward_id == pledge.reward_id and not addons_changed:
        raise InvalidInput(
            _("Your pledge is already %(amount)s with this reward. Change the amount or the reward.")
            % {"amount": pledge.amount_display},
            code="same_amount",
            field="amount",
        )
    # ``amount`` is the whole, as on the pledge: a pledge that ships keeps its shipping, which
    # the reward's minimum does not count (nor the add-ons) and which the whole must stay above.
    pledged = amount - pledge.shipping_amount - addons_amount
    if amount - addons_amount <= 0:
        raise InvalidInput(_("The amount must be more than zero."), code="amount_not_positive", field="amount")
    if pledged <= 0:
        raise InvalidInput(
            _("Your pledge includes %(shipping)s of shipping; the new amount must be more than that.")
            % {"shipping": format_amount(pledge.shipping_amount, pledge.currency)},
            code="below_shipping",
            field="amount",
        )
    if reward is not None and pledged < reward.minimum_amount:
        raise InvalidInput(
            _("The “%(reward)s” reward needs a pledge of at least %(minimum)s.")
            % {"reward": reward.title, "minimum": format_amount(reward.minimum_amount, pledge.currency)},
            code="below_reward_minimum",
            field="amount",
        )
    if reward is not None and reward_id != pledge.reward_id and reward.sold_out:
        raise Conflict(_("The “%(reward)s” reward is sold out.") % {"reward": reward.title}, code="sold_out")
    if amount > pledge.amount and not payment_token:
        raise InvalidInput(_("Choose a payment method."), code="payment_token_required", field="payment_token")
    return reward


def _shipping_reward_change_refused() -> Conflict:
    # A change to or from a reward that ships would have to charge or refund the shipping too.
    return Conflict(
        _(
            "A pledge cannot move to or from a reward that ships. Cancel this pledge (it is refunded in full) "
            "and back the reward you want instead."
        ),
        code="shipping_reward_change",
        field="reward",
    )


def _change_reserve(
    *,
    pledge: Pledge,
    amount: int,
    reward: RewardTier | None,
    key: str,
    fingerprint: str,
    actor,
    addons_to: dict | None = None,
    client_ip: str | None = None,
) -> PledgeChange:
    """Record the change and claim the new reward's slot, in one transaction; return the change.

    A change that adds no money is made right here (done); one that adds money stays pending
    until its charge is recorded. A concurrent request with the same key gets the same change.
    """
    reward_id = reward.pk if reward else None
    try:
        with transaction.atomic(durable=True):
            locked = Pledge.objects.select_for_update().get(pk=pledge.pk)
            if locked.status != PledgeStatus.HELD:
                raise Conflict(_("This pledge was cancelled or settled meanwhile."), code="not_held")
            if (
                locked.amount != pledge.amount
                or locked.reward_id != pledge.reward_id
                or locked.addons_amount != pledge.addons_amount
            ):
                raise Conflict(_("This pledge changed meanwhile. Look at it again."), code="changed_meanwhile")
            try:
                with transaction.atomic():
                    change = PledgeChange.objects.create(
                        pledge=locked,
                        from_amount=locked.amount,
                        to_amount=amount,
                        from_reward_id=locked.reward_id,
                        to_reward_id=reward_id,
                        actor=actor,
                        idempotency_key=key,
                        request_fingerprint=fingerprint,
                        addons_to=addons_to,
                    )
            except IntegrityError:
                existing = PledgeChange.objects.filter(pledge_id=locked.pk, idempotency_key=key).first()
                if existing is not None:
                    return existing
                raise Conflict(
                    _("An earlier change of this pledge is still being charged. Try again in a minute."),
                    code="change_in_progress",
                ) from None
            if reward_id != locked.reward_id and reward_id is not None and not _reward_claim_slot(reward_id=reward_id):
                raise _claim_refused(reward)  # sold out, or outside its availability window
            if addons_to is not None:
                pledge_addons_claim_change(pledge_id=locked.pk, addons_to=addons_to)
            if amount <= locked.amount:
                _change_apply(pledge=locked, change=change, client_ip=client_ip)
            return change
    except IntegrityError:
        # The key was taken by a concurrent request between our lookup and our insert.
        existing = PledgeChange.objects.filter(pledge_id=pledge.pk, idempotency_key=key).first()
        if existing is None:
            raise
        return existing


def _charge_difference(*, change: PledgeChange, pledge: Pledge, token: str) -> GatewayResult:
    """Charge what the change adds, retrying transient failures with the same key."""
    gateway = get_gateway()
    result = GatewayResult(ok=False, transient=True)
    for attempt in range(CHARGE_ATTEMPTS):
        result = gateway.charge(
            idempotency_key=pledge_change_charge_key(change.pk),
            amount=change.difference,
            currency=pledge.currency,
            token=token,
        )
        if not result.transient:
            break
        time.sleep(0.05 * (attempt + 1))
    return result


def _change_complete(
    *, change_id: int, result: GatewayResult, actor=None, client_ip: str | None = None
) -> PledgeChange:
    """Record the gateway's answer for a pending change: make it, or fail it; return the change.

    The one place an increase is finished, by the request and by the sweeper alike. Idempotent:
    a change no longer pending is left as it is (a charge that went through for one already
    failed is refunded). A refused change's charge is refunded after the commit.
    """
    if result.transient:
        return PledgeChange.objects.get(pk=change_id)
    refund_charge = ""
    with transaction.atomic(durable=True):
        pledge_id = PledgeChange.objects.filter(pk=change_id).values_list("pledge_id", flat=True).get()
        pledge = Pledge.objects.select_for_update().get(pk=pledge_id)
        change = PledgeChange.objects.select_for_update().get(pk=change_id)
        change.card_fingerprint = result.card_fingerprint  # saved by the fail or the apply below
        if change.status != PledgeChangeStatus.PENDING:
            if change.status == PledgeChangeStatus.FAILED and result.ok and not change.charge_reference:
                refund_charge = result.reference
        elif not result.ok:
            _change_fail(change=change, code=result.code or "card_declined", message=result.message)
        else:
            change.charge_reference = result.reference
            try:
                with transaction.atomic():
                    _change_apply(pledge=pledge, change=change, client_ip=client_ip)
            except Conflict as error:
                pledge.refresh_from_db()
                message = _("%(reason)s The new charge was refunded and your pledge is unchanged.") % {
                    "reason": error.message
                }
                _change_fail(change=change, code=error.code, message=message)
                refund_charge = result.reference
    if refund_charge:
        refund = get_gateway().refund(
            idempotency_key=pledge_topup_refund_key(change.pk), charge_reference=refund_charge, amount=change.difference
        )
        if not refund.ok:
            logger.error("Refund of change %s's charge failed: %s %s", change.pk, refund.code, refund.message)
    return change


def _change_fail(*, change: PledgeChange, code: str, message: str) -> None:
    change.status = PledgeChangeStatus.FAILED
    change.failure_code = code[:40]
    change.failure_message = message[:255]
    change.completed_at = timezone.now()
    change.save(
        update_fields=[
            "status",
            "failure_code",
            "failure_message",
            "charge_reference",
            "card_fingerprint",
            "completed_at",
        ]
    )
    if change.to_reward_id != change.from_reward_id:
        _reward_free_slot(reward_id=change.to_reward_id)  # the slot the change claimed
    if change.addons_to is not None:
        pledge_addons_change_failed(pledge_id=change.pledge_id, addons_to=change.addons_to)


def _change_apply(*, pledge: Pledge, change: PledgeChange, client_ip: str | None = None) -> None:
    """Make the change on the locked pledge: ledger, campaign total, reward slots, the pledge row.

    After commit, one message sends the change's e-mail and runs the follow-ups, with
    ``client_ip`` (``pledges.followups``). Raises Conflict (the caller rolls back) if the pledge is
    no longer held as it was, the reward needs more than the new amount, or the campaign stopped
    taking changes.
    """
    if pledge.status != PledgeStatus.HELD:
        raise Conflict(_("This pledge was cancelled or settled meanwhile."), code="pledge_not_held")
    if pledge.amount != change.from_amount:
        raise Conflict(_("This pledge changed meanwhile."), code="pledge_not_held")
    to_addons_amount = pledge.addons_amount if change.addons_to is None else addons_to_total(change.addons_to)
    if change.to_reward_id is not None:
        reward = RewardTier.objects.get(pk=change.to_reward_id)
        # The reward changed meanwhile.
        if change.to_amount - pledge.shipping_amount - to_addons_amount < reward.minimum_amount:
            raise Conflict(
                _("The “%(reward)s” reward needs a pledge of at least %(minimum)s.")
                % {"reward": reward.title, "minimum": format_amount(reward.minimum_amount, pledge.currency)},
                code="below_reward_minimum",
            )
    difference = change.difference
    if difference:
        # Moves the campaign's raised amount by the difference, only while it is live and before its
        # deadline (the same condition as cancelling); taking a negative amount adds it.
        taken = campaign_take_from_totals(
            campaign_id=pledge.campaign_id, amount=-difference, open_for_pledges_only=True
        )
    else:
        taken = Campaign.objects.filter(pk=pledge.campaign_id).open_for_pledges().exists()
    if not taken:
        raise Conflict(_("The campaign has ended, so this pledge can no longer be changed."), code="campaign_closed")
    if difference:
        if difference < 0:
            change.refund_parts = _refund_parts(pledge=pledge, amount=-difference)
        ids = {"backer_id": pledge.backer_id, "campaign_id": pledge.campaign_id}
        accounts = ledger_accounts_get_or_create(specs=pledge_change_account_specs(**ids), currency=pledge.currency)
        ledger_post(
            posting=pledge_change_posting(
                change_id=change.pk,
                pledge_id=pledge.pk,
                difference=difference,
                currency=pledge.currency,
                accounts=accounts,
                description=f"pledge changed from {change.from_amount} to {change.to_amount}",
                **ids,
            )
        )
    if change.to_reward_id != change.from_reward_id:
        _reward_free_slot(reward_id=change.from_reward_id)
    pledge.amount = change.to_amount
    pledge.reward_id = change.to_reward_id
    if change.addons_to is None:
        pledge.save(update_fields=["amount", "reward"])
    else:
        pledge.addons_amount = pledge_addons_apply_change(pledge=pledge, addons_to=change.addons_to)
        pledge.save(update_fields=["amount", "reward", "addons_amount"])
    change.status = PledgeChangeStatus.DONE
    change.completed_at = timezone.now()
    change.save(update_fields=["status", "charge_reference", "card_fingerprint", "refund_parts", "completed_at"])
    campaign_figures_changed(campaign_id=pledge.campaign_id)
    # Registered inside the caller's transaction (or savepoint): a change rolled back sends nothing.
    change_id, pledge_id = change.pk, pledge.pk
    transaction.on_commit(lambda: _enqueue_email("pledge_changed_follow_up", change_id, pledge_id, client_ip))


def _refund_parts(*, pledge: Pledge, amount: int) -> list[list]:
    """Split a refund of ``amount`` over the pledge's charges, newest first, none beyond what it has left."""
    parts = []
    left = amount
    for reference, remaining, _key in reversed(pledge_charges_remaining(pledge=pledge)):
        if left == 0:
            break
        take = min(left, remaining)
        if take > 0:
            parts.append([reference, take])
            left -= take
    if left:
        raise Conflict(_("This pledge cannot be refunded that much."), code="refund_exceeds_charge")
    return parts


def _change_send_refunds(*, change: PledgeChange) -> bool:
    """Send a done decrease's partial refunds to the gateway (idempotent by key); return whether all went through."""
    gateway = get_gateway()
    ok = True
    for part, (reference, amount) in enumerate(change.refund_parts):
        result = gateway.refund(
            idempotency_key=pledge_change_refund_key(change.pk, part), charge_reference=reference, amount=amount
        )
        if not result.ok:
            ok = False
            logger.error("Partial refund %s of change %s failed: %s %s", part, change.pk, result.code, result.message)
    return ok


def pledge_changes_reconcile(*, now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Finish changes a crash left half done; return how many of each were handled.

    - pending for longer than PLEDGE_PENDING_RECONCILE_AFTER: the gateway is asked what happened
      under the change's charge key, and the change is made or failed as the request would have;
    - decreases of the last 7 days whose partial refunds the gateway never confirmed: sent again
      with the same keys (nothing moves twice).
    """
    now = now or timezone.now()
    gateway = get_gateway()
    stale = PledgeChange.objects.filter(
        status=PledgeChangeStatus.PENDING, created_at__lte=now - settings.PLEDGE_PENDING_RECONCILE_AFTER
    ).order_by("id")[:limit]
    pending = 0
    for change in stale:
        found = gateway.find_operation(idempotency_key=pledge_change_charge_key(change.pk))
        if found is None:
            found = GatewayResult(ok=False, code="abandoned", message="The payment was never completed.")
        _change_complete(change_id=change.pk, result=found)
        pending += 1
    refunds = 0
    recent = PledgeChange.objects.filter(
        status=PledgeChangeStatus.DONE, completed_at__gte=now - REFUND_RESEND_WITHIN
    ).exclude(refund_parts=[])
    for change in recent.order_by("id")[:limit]:
        unconfirmed = any(
            gateway.find_operation(idempotency_key=pledge_change_refund_key(change.pk, part)) is None
            for part in range(len(change.refund_parts))
        )
        if unconfirmed:
            _change_send_refunds(change=change)
            refunds += 1
    return {"changes_reconciled": pending, "change_refunds_sent": refunds}

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
- Shipping is part of the whole: a change of reward or of country is quoted the new reward's
  shipping to the backer's country (none for a reward that does not ship), and the difference in
  shipping moves with the rest. A pledge that keeps its reward and country keeps the shipping it
  was quoted, even if the initiator has raised that cost since.

Lock order: pledge row, then reward rows (in id order), then campaign row, as elsewhere in pledges.
"""

import logging
import time
from dataclasses import dataclass
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
from projects.selectors import reward_shipping_quote
from projects.services import campaign_figures_changed, campaign_take_from_totals
from projects.shipping import country_name, country_normalise

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


@dataclass(frozen=True)
class _ChangeTarget:
    """What a checked change makes of the pledge: the whole, the reward, the shipping and add-ons it includes."""

    amount: int
    reward: RewardTier | None
    shipping_country: str
    shipping_amount: int
    addons_to: dict | None = None  # the add-ons it sets (``PledgeChange.addons_to``); None keeps them


def pledge_change(
    *,
    pledge: Pledge,
    actor,
    idempotency_key: str,
    amount: int | None = None,
    reward: RewardTier | _Unchanged | None = UNCHANGED,
    shipping_country: str | None = None,
    payment_token: str = "",
    addons: dict[int, int] | None = None,
    client_ip: str | None = None,
) -> Pledge:
    """Change the amount, reward and/or add-ons of the backer's held pledge before the deadline; return it.

    ``amount`` is the pledge without its add-ons: what is pledged to the campaign plus the shipping
    (``Pledge.amount_without_addons``); None keeps what was pledged to the campaign and adds the
    new shipping. The add-ons come on top, as at pledge time, and the difference of the whole is
    charged or refunded. ``reward`` UNCHANGED keeps the reward (None: no reward).
    ``shipping_country`` (ISO 3166-1 alpha-2; None keeps the pledge's) is where a reward that ships
    goes: a new reward or country is quoted that reward's shipping there, and a pledge keeping both
    keeps the shipping it agreed to. ``addons`` (``{add-on id: quantity}``) sets the quantities it
    names (0 removes one; the others stay); the units a change adds are claimed with its reward's
    slot, never oversold (Conflict ``addon_sold_out``); those it drops are freed when it is made.
    A higher whole charges the difference to ``payment_token``; a lower one refunds the
    difference. Idempotent per (pledge, idempotency_key): the same request again returns the
    same outcome and moves no money twice; the same key with another body raises Conflict
    ``idempotency_key_reused``. One change at a time: another one while a charge is still being
    settled raises Conflict ``change_in_progress``.

    Only the backer may (anyone else gets NotFound). Raises InvalidInput (amount invalid or
    above PLEDGE_MAX_MINOR, nothing to change, reward of another campaign or above the amount,
    a country that is not a code, missing for a reward that ships or not shipped to (field
    ``shipping_country``), no card for an increase), Conflict (pledge not held, campaign closed,
    reward sold out),
    PaymentDeclined (pledge unchanged) or PaymentUnavailable (retry with the same key).

    Once made and committed, one Celery message sends the backer the change's e-mail and runs
    what other apps added (``pledges.followups``: the fraud checks, given ``client_ip``).
    """
    key = _clean_idempotency_key(idempotency_key)
    current = Pledge.objects.select_related("campaign", "reward").get(pk=pledge.pk)
    if actor is None or actor.pk != current.backer_id:
        raise NotFound(_("No such pledge."), code="not_found")
    addons_to = pledge_addons_plan_change(pledge=current, requested=addons) if addons else None
    to_reward_id = current.reward_id if isinstance(reward, _Unchanged) else (reward.pk if reward else None)
    payment_token = (payment_token or "").strip()
    shipping_country = (shipping_country or "").strip() if isinstance(shipping_country, str) else ""
    # The request as sent, not as resolved: a retry after the change is made must match it.
    shipping = f"|ship:{shipping_country.upper()}" if shipping_country else ""
    fingerprint = f"{'keep' if amount is None else amount}|{to_reward_id or ''}{shipping}|{payment_token}"
    if addons:
        fingerprint += "|" + ",".join(f"{i}x{q}" for i, q in sorted(addons.items(), key=lambda item: str(item[0])))
    fingerprint = fingerprint[:255]
    change = PledgeChange.objects.filter(pledge_id=current.pk, idempotency_key=key).first()
    if change is None:
        target = _change_check(
            pledge=current,
            amount=amount,
            reward_id=to_reward_id,
            shipping_country=shipping_country,
            payment_token=payment_token,
            addons_to=addons_to,
        )
        pledge_checks_run(backer=actor, campaign=current.campaign, amount=target.amount, replaces=current)
        change = _change_reserve(
            pledge=current, target=target, key=key, fingerprint=fingerprint, actor=actor, client_ip=client_ip
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


def _change_check(
    *,
    pledge: Pledge,
    amount: int | None,
    reward_id: int | None,
    shipping_country: str,
    payment_token: str,
    addons_to: dict | None = None,
) -> _ChangeTarget:
    """Refuse a change that cannot go through, before anything is written or charged; return what it makes.

    ``amount`` is the pledge without its add-ons (None: what was pledged, plus the new shipping);
    ``addons_to`` the add-ons the change sets (None: those the pledge has), which come on top.
    """
    if pledge.status != PledgeStatus.HELD:
        raise Conflict(
            _("This pledge is %(status)s, so it cannot change.") % {"status": pledge.get_status_display().lower()},
            code="not_held",
        )
    if not pledge.campaign.is_open_for_pledges:
        raise Conflict(_("The campaign has ended, so this pledge can no longer be changed."), code="campaign_closed")
    if pledge.installment_plan:
        # Its installments were split from its amount: cancel it and pledge again to change it.
        raise Conflict(
            _("A pledge paid in installments cannot change: cancel it and pledge again."),
            code="installment_plan_fixed",
        )
    reward = pledge.reward
    if reward_id != pledge.reward_id:
        reward = RewardTier.objects.filter(pk=reward_id, campaign_id=pledge.campaign_id).first() if reward_id else None
        if reward_id and reward is None:
            raise InvalidInput(_("That reward is not part of this campaign."), code="invalid_reward", field="reward")
    country, shipping = _change_shipping(pledge=pledge, reward=reward, shipping_country=shipping_country)
    # Without an amount, what was pledged to the campaign stays and the new shipping is added;
    # the add-ons come on top of either.
    without_addons = pledge.pledged_amount + shipping if amount is None else amount
    to_amount = without_addons + (pledge.addons_amount if addons_to is None else addons_to_total(addons_to))
    check_amount(to_amount, pledge.currency, max_minor=settings.PLEDGE_MAX_MINOR)
    if pledge.from_balance and to_amount != pledge.amount:
        # Its refunds split between the balance and the card's charges; a new amount would need
        # both redone. Cancelling gives the balance part back to the balance, to lend again.
        raise Conflict(
            _(
                "Part of this loan was paid from your balance, so its amount cannot change. Cancel it (the "
                "balance part goes back to your balance) and lend again."
            ),
            code="paid_from_balance",
        )
    if (
        to_amount == pledge.amount
        and reward_id == pledge.reward_id
        and country == pledge.shipping_country
        and addons_to is None
    ):
        raise InvalidInput(
            _("Your pledge is already %(amount)s with this reward. Change the amount or the reward.")
            % {"amount": pledge.amount_display},
            code="same_amount",
            field="amount",
        )
    # The reward's minimum counts neither the shipping (which what is pledged must stay above)
    # nor the add-ons.
    if without_addons <= 0:
        raise InvalidInput(_("The amount must be more than zero."), code="amount_not_positive", field="amount")
    if without_addons - shipping <= 0:
        raise InvalidInput(
            _("Your pledge includes %(shipping)s of shipping; the new amount must be more than that.")
            % {"shipping": format_amount(shipping, pledge.currency)},
            code="below_shipping",
            field="amount",
        )
    if reward is not None and without_addons - shipping < reward.minimum_amount:
        raise _below_reward_minimum(reward=reward, currency=pledge.currency, country=country, shipping=shipping)
    if reward is not None and reward_id != pledge.reward_id and reward.sold_out:
        raise Conflict(_("The “%(reward)s” reward is sold out.") % {"reward": reward.title}, code="sold_out")
    if to_amount > pledge.amount and not payment_token:
        raise InvalidInput(_("Choose a payment method."), code="payment_token_required", field="payment_token")
    return _ChangeTarget(
        amount=to_amount, reward=reward, shipping_country=country, shipping_amount=shipping, addons_to=addons_to
    )


def _change_shipping(*, pledge: Pledge, reward: RewardTier | None, shipping_country: str) -> tuple[str, int]:
    """Return (country, shipping) the changed pledge includes; raise InvalidInput as ``reward_shipping_quote``.

    The same reward to the same country keeps the shipping the backer agreed to (the initiator
    may have raised that cost or stopped shipping there since: that applies to new pledges only).
    """
    wanted = shipping_country or pledge.shipping_country
    if reward is not None and reward.pk == pledge.reward_id and country_normalise(wanted) == pledge.shipping_country:
        return pledge.shipping_country, pledge.shipping_amount
    return reward_shipping_quote(reward=reward, country=wanted)


def _below_reward_minimum(*, reward: RewardTier, currency: str, country: str, shipping: int) -> InvalidInput:
    minimum = format_amount(reward.minimum_amount, currency)
    if not country:
        message = _("The “%(reward)s” reward needs a pledge of at least %(minimum)s.") % {
            "reward": reward.title,
            "minimum": minimum,
        }
    else:
        message = _(
            "The “%(reward)s” reward needs a pledge of at least %(minimum)s plus %(shipping)s shipping to "
            "%(country)s: %(whole)s in all."
        ) % {
            "reward": reward.title,
            "minimum": minimum,
            "shipping": format_amount(shipping, currency),
            "country": country_name(country),
            "whole": format_amount(reward.minimum_amount + shipping, currency),
        }
    return InvalidInput(message, code="below_reward_minimum", field="amount")


def _change_reserve(
    *, pledge: Pledge, target: _ChangeTarget, key: str, fingerprint: str, actor, client_ip: str | None = None
) -> PledgeChange:
    """Record the change and claim the new reward's slot, in one transaction; return the change.

    A change that adds no money is made right here (done); one that adds money stays pending
    until its charge is recorded. A concurrent request with the same key gets the same change.
    """
    reward, amount = target.reward, target.amount
    reward_id = reward.pk if reward else None
    try:
        with transaction.atomic(durable=True):
            locked = Pledge.objects.select_for_update().get(pk=pledge.pk)
            if locked.status != PledgeStatus.HELD:
                raise Conflict(_("This pledge was cancelled or settled meanwhile."), code="not_held")
            if (locked.amount, locked.reward_id, locked.shipping_country, locked.addons_amount) != (
                pledge.amount,
                pledge.reward_id,
                pledge.shipping_country,
                pledge.addons_amount,
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
                        from_shipping_country=locked.shipping_country,
                        to_shipping_country=target.shipping_country,
                        from_shipping_amount=locked.shipping_amount,
                        to_shipping_amount=target.shipping_amount,
                        actor=actor,
                        idempotency_key=key,
                        request_fingerprint=fingerprint,
                        addons_to=target.addons_to,
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
            if target.addons_to is not None:
                pledge_addons_claim_change(pledge_id=locked.pk, addons_to=target.addons_to)
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
        if change.to_amount - change.to_shipping_amount - to_addons_amount < reward.minimum_amount:
            refused = _below_reward_minimum(
                reward=reward,
                currency=pledge.currency,
                country=change.to_shipping_country,
                shipping=change.to_shipping_amount,
            )
            raise Conflict(refused.message, code=refused.code)
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
                description=_change_description(change),
                **ids,
            )
        )
    if change.to_reward_id != change.from_reward_id:
        _reward_free_slot(reward_id=change.from_reward_id)
    pledge.amount = change.to_amount
    pledge.reward_id = change.to_reward_id
    pledge.shipping_country = change.to_shipping_country
    pledge.shipping_amount = change.to_shipping_amount
    update_fields = ["amount", "reward", "shipping_country", "shipping_amount"]
    if change.addons_to is not None:
        pledge.addons_amount = pledge_addons_apply_change(pledge=pledge, addons_to=change.addons_to)
        update_fields.append("addons_amount")
    pledge.save(update_fields=update_fields)
    change.status = PledgeChangeStatus.DONE
    change.completed_at = timezone.now()
    change.save(update_fields=["status", "charge_reference", "card_fingerprint", "refund_parts", "completed_at"])
    campaign_figures_changed(campaign_id=pledge.campaign_id)
    # Registered inside the caller's transaction (or savepoint): a change rolled back sends nothing.
    change_id, pledge_id = change.pk, pledge.pk
    transaction.on_commit(lambda: _enqueue_email("pledge_changed_follow_up", change_id, pledge_id, client_ip))


def _change_description(change: PledgeChange) -> str:
    description = f"pledge changed from {change.from_amount} to {change.to_amount}"
    if change.shipping_changed:
        description += (
            f" (shipping {change.from_shipping_amount} to {change.from_shipping_country or '-'}"
            f" -> {change.to_shipping_amount} to {change.to_shipping_country or '-'})"
        )
    return description


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

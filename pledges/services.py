"""Pledge writes: create (charge + hold in escrow), cancel, staff refund, reconciliation.

Order of work for money, everywhere here: a short transaction claims the state change, the
payment gateway is called outside any row lock with a key derived from the pledge, and a second
short transaction records the result in the ledger. Every gateway call and ledger posting is
idempotent by that key, so a retry or a crash in between never moves money twice.

Lock order is pledge row, then (for a loan paid from the lender's balance) the balance's ledger
account row, then campaign row (taken by the conditional UPDATE of its totals), the same as
settlement's, so these never deadlock with each other.
"""

import contextlib
import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.bounds import field_max_length
from crowdfund_site.db import CompiledLookup, NothingClaimed, create_if_claimed, create_unless_taken
from crowdfund_site.exceptions import (
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    PaymentDeclined,
    PaymentUnavailable,
)
from crowdfund_site.money import check_amount, currency_exponent, format_amount
from crowdfund_site.transitions import ensure_transition_allowed
from escrow.gateway import GatewayResult, get_gateway
from escrow.ledger import (
    ledger_account_lock,
    ledger_accounts_get_or_create,
    ledger_accounts_get_or_create_cached,
    ledger_post,
)
from escrow.vocabulary import (
    charge_key,
    hold_account_specs,
    hold_posting,
    lender_balance_code,
    refund_account_specs,
    refund_key,
    refund_posting,
)
from projects.models import Campaign, RewardTier
from projects.pricing import Price, price_now, quote_read
from projects.selectors import reward_shipping_quote
from projects.services import campaign_add_to_totals, campaign_figures_changed, campaign_take_from_totals

from .addons import (
    AddOnLine,
    addons_total,
    pledge_addons_claim,
    pledge_addons_for_new_pledge,
    pledge_addons_free_all,
    pledge_addons_write,
)
from .installments import (
    installment_split,
    installments_cancel,
    installments_create,
    installments_first_paid,
    pay_over_time_check,
)
from .models import COUNTED_STATUSES, PLEDGE_TRANSITIONS, Pledge, PledgeStatus, PledgeStatusChange
from .pledge_checks import pledge_balance_reserve, pledge_checks_run, pledge_reserve_guard
from .selectors import pledge_refund_requests

logger = logging.getLogger(__name__)

CHARGE_ATTEMPTS = 3
# Failure codes that mean "the campaign refused", not "the card was declined".
CAMPAIGN_FAILURE_CODES = {"campaign_not_live"}
# What a pledge paid wholly from the backer's balance gets instead of a gateway charge or refund.
_NOTHING_AT_THE_GATEWAY = GatewayResult(ok=True)
# _pledge_reserve's "no path has written the pledge yet" (None there means "a pledge with this key exists").
_NOT_WRITTEN = object()
# The backer's pledge with an idempotency key (unique together): every refusal looks for it, to
# answer a retry, so it is compiled once instead of per request (benchmarks/README.md, Stop 11).
_pledge_by_key = CompiledLookup(Pledge, backer_id=-1, idempotency_key="placeholder-key")


def pledge_set_status(
    *, pledge: Pledge, to_status: str, actor=None, reason: str = "", save_fields: tuple[str, ...] = ()
) -> Pledge:
    """Move a locked pledge to ``to_status`` if allowed, and record who, when and why.

    Saves ``status`` and the other fields named in ``save_fields`` (one UPDATE). Raises Conflict.
    """
    ensure_transition_allowed(transitions=PLEDGE_TRANSITIONS, current=pledge.status, target=to_status, what="pledge")
    PledgeStatusChange.objects.create(
        pledge=pledge, from_status=pledge.status, to_status=to_status, actor=actor, reason=reason[:255]
    )
    pledge.status = to_status
    pledge.save(update_fields=["status", *save_fields])
    return pledge


def _fingerprint(
    *,
    campaign_id: int,
    reward_id: int | None,
    amount: int,
    currency: str,
    token: str,
    shipping_country: str = "",
    from_balance: int = 0,
    addons: dict | None = None,
    pay_over_time: bool = False,
) -> str:
    # A pledge without shipping (balance, add-ons) keeps the fingerprint it always had, so its retries still match.
    shipping = f"|ship:{shipping_country.strip().upper()}" if shipping_country else ""
    balance = f"|bal:{from_balance}" if from_balance else ""
    extras = "".join(
        f"|add:{addon_id}x{quantity}" for addon_id, quantity in sorted((addons or {}).items(), key=str) if quantity
    )
    plan = "|pot" if pay_over_time else ""
    return f"{campaign_id}|{reward_id or ''}|{amount}|{currency}{shipping}{balance}{extras}{plan}|{token}"[:255]


def pledge_shipping(*, reward: RewardTier | None, shipping_country: str, amount: int, currency: str) -> tuple[str, int]:
    """Return (country, shipping amount) for a pledge of ``amount`` (without shipping) on ``reward``.

    ("", 0) when the reward does not ship (no query); else the cost of its rule for the country
    (one query), with the whole (``amount`` plus shipping) held to PLEDGE_MAX_MINOR. Raises
    InvalidInput (country not a code, missing, not shipped to; whole too large).
    """
    country, shipping = reward_shipping_quote(reward=reward, country=shipping_country)
    if shipping:
        check_amount(amount + shipping, currency, max_minor=settings.PLEDGE_MAX_MINOR)
    return country, shipping


def _clean_idempotency_key(key: str) -> str:
    key = (key or "").strip()
    if not key or len(key) > 255:
        raise InvalidInput(
            "Every pledge request needs an idempotency key of 1 to 255 characters.",
            code="idempotency_key_required",
            field="idempotency_key",
        )
    return key


def pledge_create(
    *,
    backer,
    campaign: Campaign,
    amount: int,
    currency: str,
    payment_token: str,
    idempotency_key: str,
    reward: RewardTier | None = None,
    shipping_country: str = "",
    price_quote: str = "",
    client_ip: str | None = None,
    from_balance: int = 0,
    addons: dict[int, int] | None = None,
    pay_over_time: bool = False,
) -> Pledge:
    """Charge the backer and hold ``amount`` in the campaign's escrow; return the held pledge.

    With ``pay_over_time`` (a whole of at least PAY_OVER_TIME_MIN_AMOUNT, by card, no add-ons;
    else InvalidInput, nothing written) the whole is pledged and counted towards the goal, but
    only its first of 3 monthly installments is charged and held now (``pledges.installments``).

    ``addons`` (``{add-on id: quantity}``, at most ADDONS_MAX_PER_BACKER of each) come on top of
    ``amount`` as shipping does: the pledge charges and holds the whole and keeps what the add-ons
    cost in ``addons_amount`` (``pledges.addons``). Their units are claimed with the reward's slot,
    before the card is charged, and never oversold (Conflict ``addon_sold_out``).

    ``from_balance`` of the whole is paid from the backer's balance instead of the card (a
    lender re-lending what repayments paid them; only where the campaign's funding model has a
    balance source, ``pledge_checks``), and the card is charged the rest (nothing, and no
    ``payment_token`` needed, when the balance pays it all). The balance is reserved under its
    lock as the pending pledge is written, and taken in the hold's one ledger transaction; a
    refund gives that part back to the balance, never to a card.

    For a reward that ships, ``shipping_country`` (ISO 3166-1 alpha-2) picks its shipping rule:
    the pledge then charges and holds ``amount`` plus that shipping cost as one whole, and keeps
    the country and the shipping amount (``pledge_shipping``).

    ``campaign`` and ``reward`` are as the caller loaded them for this request: the request is
    checked against them without reading them again, and the hold itself re-checks, in the
    same statement that adds the amount, that the campaign is still live (a charge for a
    campaign that stopped meanwhile is refunded).

    Idempotent per (backer, idempotency_key): a retry with the same key and body returns the
    same pledge (or raises the same refusal) without charging again, even if the request would
    be refused now (the campaign closed, the reward sold out); the same key with a different
    body raises Conflict ``idempotency_key_reused``. A limited reward tier is never oversold:
    its slot is claimed with one conditional UPDATE before the card is charged. A tier with price
    steps takes the price ``price_quote`` kept (projects.pricing), else its price now; the same
    UPDATE refuses a slot past the step's count (Conflict ``price_changed``, the new price named).

    Raises InvalidInput (amount, currency, reward, shipping country), NotAllowed (own campaign), Conflict
    (campaign not live, sold out), what a check of the campaign's funding model raises
    (``pledge_checks``: a lender's investor limit; the balance too small: InvalidInput
    ``balance_too_small``, nothing reserved or charged), PaymentDeclined (card declined; the pledge
    is kept as failed) or PaymentUnavailable (gateway down; retry with the same key).

    Once held and committed, one Celery message sends the receipt and runs what other apps added
    (``pledges.followups``: the fraud checks, given ``client_ip``, the address the request came from).
    """
    key = _clean_idempotency_key(idempotency_key)
    fingerprint = _fingerprint(
        campaign_id=campaign.pk,
        reward_id=reward.pk if reward else None,
        amount=amount,
        currency=currency,
        token=payment_token,
        shipping_country=shipping_country,
        from_balance=from_balance,
        addons=addons,
        pay_over_time=pay_over_time,
    )
    try:
        # A new key is the usual case: check and insert straight away, without looking first.
        claim_below = _pledge_check_request(
            backer=backer,
            campaign=campaign,
            amount=amount,
            currency=currency,
            payment_token=payment_token,
            reward=reward,
            price_quote=price_quote,
            from_balance=from_balance,
        )
        country, shipping = pledge_shipping(
            reward=reward, shipping_country=shipping_country, amount=amount, currency=currency
        )
        addon_lines = pledge_addons_for_new_pledge(campaign=campaign, requested=addons) if addons else []
        if addon_lines:
            shipping_and_addons = shipping + addons_total(addon_lines)
            check_amount(amount + shipping_and_addons, currency, max_minor=settings.PLEDGE_MAX_MINOR)
        else:
            shipping_and_addons = shipping
        _check_from_balance(
            from_balance, whole=amount + shipping_and_addons, currency=currency, payment_token=payment_token
        )
        if pay_over_time:
            pay_over_time_check(
                campaign=campaign,
                whole=amount + shipping_and_addons,
                currency=currency,
                from_balance=from_balance,
                addons=addon_lines,
            )
        pledge_checks_run(backer=backer, campaign=campaign, amount=amount + shipping_and_addons)
        pledge = _pledge_reserve(
            backer=backer,
            campaign=campaign,
            amount=amount + shipping_and_addons,
            currency=currency,
            key=key,
            fingerprint=fingerprint,
            reward=reward,
            shipping_country=country,
            shipping_amount=shipping,
            claim_below=claim_below,
            from_balance=from_balance,
            addon_lines=addon_lines,
            installments_token=payment_token if pay_over_time else None,
        )
    except (InvalidInput, NotAllowed, Conflict):
        # A retry of a request whose pledge exists answers with that pledge's outcome, even if
        # the request would be refused now: its campaign closed or its reward sold out since.
        pledge = _pledge_by_key.get(backer.pk, key)
        if pledge is None:
            raise
    _ensure_same_request(pledge, fingerprint)
    if pledge.status == PledgeStatus.PENDING:
        result = _charge(pledge=pledge, token=payment_token)
        pledge = _pledge_record_charge(
            pledge_id=pledge.pk, result=result, actor=backer, pending=pledge, client_ip=client_ip
        )
    return _pledge_outcome(pledge)


def _ensure_same_request(pledge: Pledge, fingerprint: str) -> None:
    if pledge.request_fingerprint != fingerprint:
        raise Conflict(
            "This idempotency key was already used for a different pledge.",
            code="idempotency_key_reused",
            field="idempotency_key",
        )


def _pledge_check_request(
    *,
    backer,
    campaign: Campaign,
    amount: int,
    currency: str,
    payment_token: str,
    reward: RewardTier | None,
    price_quote: str = "",
    from_balance: int = 0,
) -> int | None:
    """Refuse a pledge request the campaign (as loaded) cannot take; no database access.

    Returns the claim count the reward's slot must stay below (a count price step), or None.
    """
    currency_exponent(currency)
    if currency != campaign.currency:
        raise InvalidInput(
            f"This campaign takes pledges in {campaign.currency}, not {currency}.",
            code="wrong_currency",
            field="currency",
        )
    check_amount(amount, currency, max_minor=settings.PLEDGE_MAX_MINOR)
    # Paid wholly from the balance (checked against the whole with shipping by _check_from_balance).
    if not (payment_token or "").strip() and not (from_balance and from_balance >= amount):
        raise InvalidInput(_("Choose a payment method."), code="payment_token_required", field="payment_token")
    if not campaign.is_open_for_pledges:
        raise Conflict(_("This campaign is not taking pledges."), code="campaign_not_live")
    if backer.pk == campaign.initiator_id:
        raise NotAllowed(_("You cannot back your own campaign."), code="own_campaign")
    if reward is not None:
        if reward.campaign_id != campaign.pk:
            raise InvalidInput(_("That reward is not part of this campaign."), code="invalid_reward", field="reward")
        price = _reward_price(reward, amount=amount, price_quote=price_quote, currency=campaign.currency)
        if amount < price.amount:
            minimum = format_amount(price.amount, campaign.currency)
            raise InvalidInput(
                _("The “%(reward)s” reward needs a pledge of at least %(minimum)s.")
                % {"reward": reward.title, "minimum": minimum},
                code="below_reward_minimum",
                field="amount",
            )
        if reward.sold_out:
            # Known full as loaded: refuse before writing or charging anything. The conditional
            # UPDATE of _reward_claim_slot stays the authoritative check for the last slots.
            raise _sold_out(reward)
        if not reward.available_now:
            raise _claim_refused(reward)
        if amount < reward.minimum_amount:
            return price.until_claimed  # only a step's price covers it: its slots bound the claim
    return None


def _check_from_balance(from_balance: int, *, whole: int, currency: str, payment_token: str) -> None:
    """Refuse a part paid from the balance that is negative, absurd or more than the whole pledge."""
    if not from_balance:
        return
    try:
        check_amount(from_balance, currency, max_minor=settings.PLEDGE_MAX_MINOR)
    except InvalidInput as error:
        raise InvalidInput(error.message, code=error.code, field="from_balance") from None
    if from_balance > whole:
        raise InvalidInput(
            _("You can pay at most the whole pledge, %(whole)s, from your balance.")
            % {"whole": format_amount(whole, currency)},
            code="from_balance_above_amount",
            field="from_balance",
        )
    if from_balance < whole and not (payment_token or "").strip():
        raise InvalidInput(
            _("Your balance pays %(part)s: choose a card for the other %(rest)s.")
            % {"part": format_amount(from_balance, currency), "rest": format_amount(whole - from_balance, currency)},
            code="payment_token_required",
            field="payment_token",
        )


def _reward_price(reward: RewardTier, *, amount: int, price_quote: str, currency: str) -> Price:
    """The price this request pays for ``reward``: the one quoted while fresh, else the one now."""
    if not reward.price_steps:
        return Price(reward.minimum_amount)
    now = price_now(reward)
    if not price_quote:
        return now
    quoted = quote_read(reward, price_quote)
    if quoted is None and amount < now.amount:
        raise Conflict(
            _("The price you were shown for “%(reward)s” has expired: it is now %(price)s.")
            % {"reward": reward.title, "price": format_amount(now.amount, currency)},
            code="price_quote_expired",
            field="amount",
        )
    return quoted or now


def _pledge_reserve(
    *,
    backer,
    campaign: Campaign,
    amount: int,
    currency: str,
    key: str,
    fingerprint: str,
    reward: RewardTier | None,
    shipping_country: str = "",
    shipping_amount: int = 0,
    claim_below: int | None = None,
    from_balance: int = 0,
    addon_lines: list[AddOnLine] = (),
    installments_token: str | None = None,
) -> Pledge:
    """Claim a reward slot (and add-on units) and create the pending pledge, in one short transaction.

    With ``installments_token`` the pledge is paid over time: its 3 installments are written with
    it, and only the first is charged (``unheld_amount`` is the rest).

    Returns the backer's pledge with this key: the new one, or the one a concurrent (or
    earlier) request made first, in which case nothing is claimed. Raises Conflict if the
    reward is sold out, and what ``pledge_balance_reserve`` raises (no balance source, the
    balance too small), before anything is written.
    """
    fields = {
        "backer": backer,
        "campaign": campaign,
        "reward": reward,
        "amount": amount,
        "currency": currency,
        "idempotency_key": key,
        "request_fingerprint": fingerprint,
        "shipping_country": shipping_country,
        "shipping_amount": shipping_amount,
        "from_balance": from_balance,
    }
    if addon_lines:
        fields["addons_amount"] = addons_total(addon_lines)
    if installments_token is not None:
        fields["installment_plan"] = True
        fields["unheld_amount"] = amount - installment_split(amount)[0]
    with (
        pledge_reserve_guard(backer=backer, campaign=campaign, amount=amount),  # a lender's limit, under lock
        # The balance is locked and checked, and the pending pledge that holds part of it back
        # is written, in one transaction: two pledges (or a withdrawal) at once cannot overdraw it.
        transaction.atomic() if from_balance else contextlib.nullcontext(),
    ):
        if from_balance:
            pledge_balance_reserve(backer=backer, campaign=campaign, amount=from_balance)
        pledge = _NOT_WRITTEN
        # A plan's installment rows are written with its pledge: that takes the ORM path below.
        one_row = not addon_lines and installments_token is None
        if reward is None and one_row:
            pledge = create_unless_taken(Pledge, **fields)  # one INSERT: no transaction needed around it
        elif reward is not None and one_row and _one_statement_claims():
            # The launch rush's early bird: the slot and the pending pledge in one statement.
            # The same claim as _reward_claim_or_refuse's first one.
            paying = amount - shipping_amount
            at_final_price = claim_below is None and paying >= reward.minimum_amount
            claims = _reward_claims(reward_id=reward.pk, below=claim_below, paying=paying if at_final_price else None)
            try:
                pledge = create_if_claimed(claims, {"claimed_count": F("claimed_count") + 1}, Pledge, **fields)
            except NothingClaimed:
                pass  # sold out, a window closed or a price step moved: the ORM path below says which
            except IntegrityError:
                pledge = None
        if pledge is _NOT_WRITTEN:
            try:
                with transaction.atomic():
                    if reward is not None:
                        _reward_claim_or_refuse(
                            reward=reward,
                            below=claim_below,
                            paying=amount - shipping_amount - fields.get("addons_amount", 0),
                            currency=currency,
                        )
                    if addon_lines:
                        pledge_addons_claim(units={line.addon.pk: line.quantity for line in addon_lines})
                    pledge = Pledge.objects.create(**fields)
                    if addon_lines:
                        pledge_addons_write(pledge=pledge, lines=addon_lines)
                    if installments_token is not None:
                        installments_create(pledge=pledge, payment_token=installments_token)
            except IntegrityError:
                pledge = None
    if pledge is None:
        # A pledge with this key exists (made by an earlier or a concurrent request); ours rolled
        # back (including its reward slot) and answers with that one. With no such pledge, the
        # constraint that refused ours is "one open pledge per backer per campaign".
        pledge = _pledge_by_key.get(backer.pk, key)
        if pledge is None:
            raise already_backing()
    return pledge


def already_backing() -> Conflict:
    """The refusal of a second open pledge on one campaign (the ``pledge_one_open_per_backer`` constraint)."""
    return Conflict(
        _("You already back this campaign. Use “Manage your pledge” to change its amount or reward."),
        code="already_backing",
    )


def _sold_out(reward: RewardTier) -> Conflict:
    return Conflict(
        _("The “%(reward)s” reward is sold out.") % {"reward": reward.title}, code="sold_out", field="reward"
    )


# The refusals of a reward that takes no claims now: the form asks for another reward.
REWARD_UNAVAILABLE_CODES = {"sold_out", "reward_not_yet_available", "reward_no_longer_available"}


def _reward_claim_or_refuse(*, reward: RewardTier, below: int | None, paying: int, currency: str) -> None:
    """Claim a slot of ``reward`` for a pledge paying ``paying``, or raise the refusal (Conflict).

    ``reward`` is the caller's copy. A pledge that pays its price after the steps is held to it
    in the UPDATE (a pledge at a step's price was checked against the step by the caller). If a
    next price step opened since the copy was loaded, that price went up, and the pledge's price
    may now be the new step's: the tier is read again (only on this refusal path) and, if so,
    the slot is claimed within the step's count.
    """
    at_final_price = below is None and paying >= reward.minimum_amount
    if _reward_claim_slot(reward_id=reward.pk, below=below, paying=paying if at_final_price else None):
        return
    fresh = RewardTier.objects.filter(pk=reward.pk).first() or reward
    if at_final_price and fresh.minimum_amount > paying:
        price = price_now(fresh)
        at_a_step = price.until_claimed is not None and price.amount <= paying
        if at_a_step and _reward_claim_slot(reward_id=reward.pk, below=price.until_claimed, paying=paying):
            return
    raise _claim_refused(fresh, price_step_currency=currency, below=below, paying=paying, fresh=True)


def _claim_refused(
    reward: RewardTier,
    *,
    price_step_currency: str | None = None,
    below: int | None = None,
    paying: int = 0,
    fresh: bool = False,
) -> Conflict:
    """The refusal for a claim _reward_claim_slot declined: outside its window (now), its price moved, or sold out.

    Read again (only on this refusal path, unless ``fresh``): the caller's copy may predate a
    window moved or a next price step opened meanwhile (``price_changed``, the price now named).
    """
    if not fresh:
        reward = RewardTier.objects.filter(pk=reward.pk).first() or reward
    state = reward.window_state()
    if state == "upcoming":
        return Conflict(
            _("The “%(reward)s” reward is available from %(start)s.")
            % {"reward": reward.title, "start": _when(reward.available_from)},
            code="reward_not_yet_available",
            field="reward",
        )
    if state == "ended":
        return Conflict(
            _("The “%(reward)s” reward was available until %(end)s.")
            % {"reward": reward.title, "end": _when(reward.available_until)},
            code="reward_no_longer_available",
            field="reward",
        )
    price_moved = below is not None or reward.minimum_amount > paying  # the step's slots, or a next step opened
    if price_step_currency is not None and price_moved and not reward.sold_out:
        return Conflict(
            _("The slots at the price you were shown for “%(reward)s” are gone: it is now %(price)s.")
            % {"reward": reward.title, "price": format_amount(price_now(reward).amount, price_step_currency)},
            code="price_changed",
            field="amount",
        )
    return _sold_out(reward)


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _reward_claim_slot(
    *, reward_id: int, in_window: bool = True, below: int | None = None, paying: int | None = None
) -> bool:
    """Take one slot of a reward tier; False if it is sold out (or, with ``in_window``, outside its window).

    One conditional UPDATE: the database re-checks the limit and the window under the row lock,
    so concurrent claims can never take more slots than the limit, nor a slot once it closed, nor
    (``below``) a slot past the price step the pledge pays for, nor (``paying``, without a step)
    a slot a next price step opened meanwhile (projects.services.reward_price_step_open) asks
    more for than the pledge pays: the caller checked the price on its copy of the tier.
    """
    claims = _reward_claims(reward_id=reward_id, in_window=in_window, below=below, paying=paying)
    return claims.update(claimed_count=F("claimed_count") + 1) == 1


def _reward_claims(*, reward_id: int, in_window: bool = True, below: int | None = None, paying: int | None = None):
    """The reward tier's row, if it can give one more slot under these conditions (see _reward_claim_slot)."""
    claims = RewardTier.objects.filter(pk=reward_id).filter(
        Q(quantity_limit__isnull=True) | Q(claimed_count__lt=F("quantity_limit"))
    )
    if below is not None:
        claims = claims.filter(claimed_count__lt=below)
    elif paying is not None:
        claims = claims.filter(minimum_amount__lte=paying)
    if in_window:
        now = timezone.now()
        claims = claims.filter(Q(available_from__isnull=True) | Q(available_from__lte=now)).filter(
            Q(available_until__isnull=True) | Q(available_until__gt=now)
        )
    return claims


def _one_statement_claims() -> bool:
    """Whether a slot and its pending pledge can be written as one statement (create_if_claimed) here."""
    connection = transaction.get_connection(Pledge.objects.db)
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _reward_free_slot(*, reward_id: int | None) -> None:
    if reward_id is not None:
        RewardTier.objects.filter(pk=reward_id, claimed_count__gt=0).update(claimed_count=F("claimed_count") - 1)


def _charge(*, pledge: Pledge, token: str) -> GatewayResult:
    """Charge the pledge through the gateway, retrying transient failures with the same key.

    A pledge paid wholly from the backer's balance charges nothing: its hold takes it all.
    """
    if not pledge.card_amount:
        return _NOTHING_AT_THE_GATEWAY
    gateway = get_gateway()
    result = GatewayResult(ok=False, transient=True)
    for attempt in range(CHARGE_ATTEMPTS):
        result = gateway.charge(
            idempotency_key=charge_key(pledge.pk), amount=pledge.card_amount, currency=pledge.currency, token=token
        )
        if not result.transient:
            break
        time.sleep(0.05 * (attempt + 1))
    return result


class _CampaignNoLongerLive(Exception):
    pass


def _pledge_record_charge(
    *, pledge_id: int, result: GatewayResult, actor=None, pending: Pledge | None = None, client_ip: str | None = None
) -> Pledge:
    """Record the gateway's answer for a pending pledge: hold it in escrow, or fail it.

    A charge that went through for a campaign that closed meanwhile (or for a pledge already
    failed by reconciliation) is refunded at the gateway, so no backer pays without a held
    pledge. A transient failure leaves the pledge pending for a retry. ``pending`` is the
    pledge as the caller has it (pending when loaded): a successful charge then holds it
    without reading it again, unless someone else got to it first. ``client_ip`` goes to the
    held pledge's follow-ups (``_pledge_hold``).
    """
    if result.transient:
        return Pledge.objects.get(pk=pledge_id)
    if pending is not None and result.ok:
        try:
            with transaction.atomic():
                held = _pledge_hold_if_pending(pledge=pending, result=result, actor=actor, client_ip=client_ip)
        except _CampaignNoLongerLive:
            held = False  # rolled back: the pledge is still pending, and failed below
        if held:
            return pending
    charged_but_not_held = False
    try:
        with transaction.atomic():
            pledge = Pledge.objects.select_for_update().get(pk=pledge_id)
            pledge.card_fingerprint = result.card_fingerprint  # saved by the hold or the fail
            if pledge.status == PledgeStatus.PENDING and not result.ok:
                _pledge_fail(pledge=pledge, code=result.code, message=result.message, actor=actor)
            elif pledge.status == PledgeStatus.PENDING:
                pledge.payment_reference = result.reference
                # Raises _CampaignNoLongerLive if the campaign closed meanwhile, which rolls the
                # whole hold back (no savepoint needed: there is nothing else to keep).
                _pledge_hold(pledge=pledge, actor=actor, client_ip=client_ip)
            elif pledge.status == PledgeStatus.FAILED and result.ok:
                charged_but_not_held = True
    except _CampaignNoLongerLive:
        with transaction.atomic():
            pledge = Pledge.objects.select_for_update().get(pk=pledge_id)
            if pledge.status == PledgeStatus.PENDING:
                pledge.payment_reference = result.reference
                pledge.card_fingerprint = result.card_fingerprint
                _pledge_fail(
                    pledge=pledge,
                    code="campaign_not_live",
                    message="The campaign closed before the payment completed; the charge was refunded.",
                    actor=actor,
                )
        charged_but_not_held = pledge.status == PledgeStatus.FAILED
    if charged_but_not_held and pledge.card_amount:
        get_gateway().refund(
            idempotency_key=refund_key(pledge.pk), charge_reference=result.reference, amount=pledge.card_amount
        )
    return pledge


def _pledge_hold_if_pending(*, pledge: Pledge, result: GatewayResult, actor, client_ip: str | None = None) -> bool:
    """Hold ``pledge`` for its successful charge if it is still pending; return whether it did.

    The pending -> held transition without reading the pledge first: one conditional UPDATE
    both checks the status under the row lock and writes it (what ``select_for_update`` then
    ``pledge_set_status`` do in two statements). False (nothing written) if another request or
    the sweeper got to the pledge first. Raises _CampaignNoLongerLive (roll back) like
    ``_pledge_hold``. Call inside a transaction.
    """
    ensure_transition_allowed(
        transitions=PLEDGE_TRANSITIONS, current=PledgeStatus.PENDING, target=PledgeStatus.HELD, what="pledge"
    )
    held_at = timezone.now()
    marked = Pledge.objects.filter(pk=pledge.pk, status=PledgeStatus.PENDING).update(
        status=PledgeStatus.HELD,
        payment_reference=result.reference,
        card_fingerprint=result.card_fingerprint,
        held_at=held_at,
    )
    if not marked:
        return False
    pledge.status, pledge.held_at = PledgeStatus.HELD, held_at
    pledge.payment_reference, pledge.card_fingerprint = result.reference, result.card_fingerprint
    _pledge_hold(pledge=pledge, actor=actor, marked_held=True, client_ip=client_ip)
    return True


def _pledge_hold(*, pledge: Pledge, actor, marked_held: bool = False, client_ip: str | None = None) -> None:
    """Post the hold, move the locked pledge to held and add it to the campaign's totals.

    With ``marked_held`` the pledge row already says held (``_pledge_hold_if_pending``), and only
    the status change is recorded. Raises _CampaignNoLongerLive if the campaign stopped taking
    pledges: the caller's transaction must roll back. After commit, one message sends the
    receipt and runs the follow-ups, with ``client_ip`` (``pledges.followups``).
    """
    ids = {"backer_id": pledge.backer_id, "campaign_id": pledge.campaign_id}
    specs = hold_account_specs(**ids, from_balance=bool(pledge.from_balance))
    accounts = ledger_accounts_get_or_create_cached(specs=specs, currency=pledge.currency)
    if pledge.from_balance:
        # The reservation becomes an entry under the balance's lock, so that a withdrawal or
        # another pledge reading the balance and the reservations sees them both before or after.
        ledger_account_lock(code=lender_balance_code(pledge.backer_id), currency=pledge.currency)
    record = ledger_post(
        posting=hold_posting(
            pledge_id=pledge.pk,
            amount=pledge.held_amount,  # paid over time: the first installment
            currency=pledge.currency,
            accounts=accounts,
            from_balance=pledge.from_balance,
            **ids,
        )
    )
    if pledge.installment_plan:
        installments_first_paid(pledge=pledge, transaction_record=record)
    if marked_held:
        PledgeStatusChange.objects.create(
            pledge=pledge, from_status=PledgeStatus.PENDING, to_status=PledgeStatus.HELD, actor=actor
        )
    else:
        pledge.held_at = timezone.now()
        pledge_set_status(
            pledge=pledge,
            to_status=PledgeStatus.HELD,
            actor=actor,
            save_fields=("payment_reference", "card_fingerprint", "held_at"),
        )
    # Last, and as one statement, so the hot campaign row stays locked for as short a time as
    # possible.
    if not campaign_add_to_totals(
        campaign_id=pledge.campaign_id, pledge_id=pledge.pk, backer_id=pledge.backer_id, amount=pledge.amount
    ):
        raise _CampaignNoLongerLive
    campaign = pledge.campaign if Pledge.campaign.is_cached(pledge) else None
    campaign_figures_changed(campaign_id=pledge.campaign_id, slug=campaign.slug if campaign else None)
    pledge_id = pledge.pk
    transaction.on_commit(lambda: _enqueue_email("pledge_held_follow_up", pledge_id, client_ip))


def _other_counted_pledges(pledge: Pledge):
    """The backer's other held or released pledges on the same campaign."""
    return Pledge.objects.filter(
        campaign_id=pledge.campaign_id, backer_id=pledge.backer_id, status__in=COUNTED_STATUSES
    ).exclude(pk=pledge.pk)


def _adjust_backer_count(*, pledge: Pledge, delta: int) -> None:
    """Count each backer once per campaign, however many pledges they hold there."""
    if not _other_counted_pledges(pledge).exists():
        Campaign.objects.filter(pk=pledge.campaign_id).update(backer_count=F("backer_count") + delta)


def _pledge_fail(*, pledge: Pledge, code: str, message: str, actor=None) -> None:
    pledge.failure_code = code[:40]
    pledge.failure_message = message[:255]
    pledge.save(update_fields=["failure_code", "failure_message", "payment_reference", "card_fingerprint"])
    pledge_set_status(pledge=pledge, to_status=PledgeStatus.FAILED, actor=actor, reason=code)
    _reward_free_slot(reward_id=pledge.reward_id)
    pledge_addons_free_all(pledge=pledge)
    if pledge.installment_plan:
        installments_cancel(pledge_ids=[pledge.pk])


def _pledge_outcome(pledge: Pledge) -> Pledge:
    if pledge.status == PledgeStatus.FAILED:
        if pledge.failure_code in CAMPAIGN_FAILURE_CODES:
            raise Conflict(pledge.failure_message, code=pledge.failure_code)
        raise PaymentDeclined(pledge.failure_message or _("The payment was declined."), code=pledge.failure_code)
    if pledge.status == PledgeStatus.PENDING:
        raise PaymentUnavailable(
            _("The payment processor had a temporary problem. Please try again."), code="payment_processing_error"
        )
    return pledge


def pledge_cancel(*, pledge: Pledge, actor) -> Pledge:
    """Cancel the backer's held pledge before the deadline and refund it; return it.

    Only the backer may (anyone else gets NotFound, as if it did not exist). Raises Conflict
    if the pledge is not held or the campaign no longer takes changes. The reward slot is
    freed. The refund is recorded in the ledger first and then sent to the gateway; if the
    process dies in between, the sweeper sends it.
    """
    with transaction.atomic(durable=True):
        pledge = Pledge.objects.select_for_update().get(pk=pledge.pk)
        if actor is None or actor.pk != pledge.backer_id:
            raise NotFound(_("No such pledge."), code="not_found")
        _pledge_return_to_backer(
            pledge=pledge, to_status=PledgeStatus.CANCELLED, actor=actor, reason="cancelled by backer"
        )
    pledge_send_refund(pledge=pledge)
    return pledge


def _pledge_change_amount_complete(*, old_id: int, new_id: int, result: GatewayResult | None, actor) -> Pledge:
    """Record the replacement's charge: swap it for the old pledge, or fail it; return it.

    The one place a legacy replacement (made by changes of amount before a pledge kept its number
    across changes, see ``pledges.changes``) is finished, by the sweeper
    (``pledge_reconcile_pending``) alike. Idempotent: a replacement no longer pending is left as
    it is (a charge that went through for one already failed is refunded). Locks both pledges in
    id order (the old one is always older), then the campaign row, the order used everywhere in
    this module. Refunds are sent to the gateway after the commit.
    """
    if result is not None and result.transient:
        return Pledge.objects.get(pk=new_id)
    refund_new = refund_old = False
    with transaction.atomic(durable=True):
        locked = {p.pk: p for p in Pledge.objects.select_for_update().filter(pk__in=[old_id, new_id]).order_by("pk")}
        old, new = locked[old_id], locked[new_id]
        if result is not None:
            new.card_fingerprint = result.card_fingerprint  # saved by the hold or the fail
        if new.status == PledgeStatus.PENDING and not result.ok:
            _pledge_fail(pledge=new, code=result.code, message=result.message, actor=actor)
        elif new.status == PledgeStatus.PENDING:
            new.payment_reference = result.reference
            try:
                with transaction.atomic():
                    _pledge_swap(old=old, new=new, actor=actor, hold=True)
                refund_old = True
            except (Conflict, _CampaignNoLongerLive) as error:
                code = getattr(error, "code", "campaign_not_live")
                code = "campaign_not_live" if code == "campaign_closed" else code
                new.refresh_from_db()
                new.payment_reference = result.reference
                new.card_fingerprint = result.card_fingerprint
                message = _("%(reason)s The new charge was refunded and your pledge is unchanged.") % {
                    "reason": getattr(error, "message", _("The campaign has ended."))
                }
                _pledge_fail(pledge=new, code=code, message=message, actor=actor)
                refund_new = True
        elif new.status == PledgeStatus.HELD and old.status == PledgeStatus.HELD:
            # Held as an ordinary pledge by the sweeper before it knew replacements (before the
            # ``replaces`` link existed); finish the swap now if still allowed.
            try:
                with transaction.atomic():
                    _pledge_swap(old=old, new=new, actor=actor, hold=False)
                refund_old = True
            except Conflict:
                pass  # too late: both stay held and settle like any two pledges
        elif new.status == PledgeStatus.FAILED and result is not None and result.ok:
            refund_new = True  # failed by the sweeper while the charge went through
    if refund_new:
        pledge_send_refund(pledge=new)
    if refund_old:
        pledge_send_refund(pledge=old)
    return new


def _pledge_swap(*, old: Pledge, new: Pledge, actor, hold: bool) -> None:
    """Cancel the locked old pledge and hold the locked replacement, with the reward's slot moving along."""
    if old.status != PledgeStatus.HELD:
        raise Conflict(_("This pledge was cancelled or settled meanwhile."), code="pledge_not_held")
    if old.reward_id is not None:
        reward = RewardTier.objects.get(pk=old.reward_id)
        if new.pledged_amount < reward.minimum_amount:  # the reward changed meanwhile
            raise Conflict(
                _("The “%(reward)s” reward needs a pledge of at least %(minimum)s.")
                % {"reward": reward.title, "minimum": format_amount(reward.minimum_amount, new.currency)},
                code="below_reward_minimum",
            )
    reason = f"amount changed to {format_amount(new.amount, new.currency)}: replaced by pledge #{new.pk}"
    # Frees the old pledge's slot and takes its amount off the campaign's total, only while the
    # campaign is live and before its deadline (else Conflict, and this savepoint rolls back).
    _pledge_return_to_backer(pledge=old, to_status=PledgeStatus.CANCELLED, actor=actor, reason=reason)
    # The slot just freed is still locked by this transaction, so taking it back cannot fail.
    # Its window does not matter: the backer keeps the reward they already hold.
    if old.reward_id is not None and not _reward_claim_slot(reward_id=old.reward_id, in_window=False):
        raise Conflict(_("The reward is sold out."), code="sold_out")
    new.reward_id = old.reward_id
    new.save(update_fields=["reward"])
    if hold:
        _pledge_hold(pledge=new, actor=actor)


def pledge_refund(*, pledge: Pledge, actor, reason: str) -> Pledge:
    """Refund a held pledge on behalf of the platform (finance staff only, reason required).

    Works while the campaign is live or suspended; settlement handles closed campaigns. The
    refund is recorded in the audit log (who, why, from, to, amount) in the transaction that
    posts it to the ledger, whichever interface asked.
    """
    reason = (reason or "").strip()
    if actor is None or not actor.has_perm("pledges.refund_pledge"):
        raise NotAllowed("Only finance staff can refund pledges.", code="not_staff")
    if not reason:
        raise InvalidInput("Give a reason for the refund.", code="reason_required", field="reason")
    limit = field_max_length(PledgeStatusChange, "reason")
    if len(reason) > limit:
        # The reason is stored with the status change, whose column holds no more.
        raise InvalidInput(f"The reason may be at most {limit} characters.", code="too_long", field="reason")
    with transaction.atomic(durable=True):
        pledge = Pledge.objects.select_for_update().get(pk=pledge.pk)
        from_status = pledge.status
        _pledge_return_to_backer(pledge=pledge, to_status=PledgeStatus.REFUNDED, actor=actor, reason=reason)
        audit_record(
            actor=actor,
            action="pledge_refund",
            obj=pledge,
            reason=reason,
            details={
                "from": from_status,
                "to": PledgeStatus.REFUNDED,
                "amount": pledge.amount,
                "currency": pledge.currency,
            },
        )
    pledge_send_refund(pledge=pledge)
    return pledge


def _pledge_return_to_backer(*, pledge: Pledge, to_status: str, actor, reason: str) -> None:
    if pledge.status != PledgeStatus.HELD:
        raise Conflict(
            f"This pledge is {pledge.get_status_display().lower()} and cannot be {to_status}.",
            code="not_held",
        )
    if pledge.is_late:  # never in the campaign's totals; staff may refund it until its batch releases it
        from .late_pledges import late_pledge_return_check  # it builds on this module

        late_pledge_return_check(pledge=pledge, to_status=to_status)
    elif not campaign_take_from_totals(
        campaign_id=pledge.campaign_id,
        amount=pledge.amount,
        open_for_pledges_only=to_status == PledgeStatus.CANCELLED,
    ):
        raise Conflict(
            _("The campaign has ended, so this pledge can no longer be changed here."), code="campaign_closed"
        )
    ids = {"backer_id": pledge.backer_id, "campaign_id": pledge.campaign_id}
    specs = refund_account_specs(**ids, from_balance=bool(pledge.from_balance))
    accounts = ledger_accounts_get_or_create(specs=specs, currency=pledge.currency)
    ledger_post(
        posting=refund_posting(
            pledge_id=pledge.pk,
            amount=pledge.held_amount,
            currency=pledge.currency,
            accounts=accounts,
            description=reason,
            from_balance=pledge.from_balance,
            **ids,
        )
    )
    pledge.closed_at = timezone.now()
    pledge.save(update_fields=["closed_at"])
    pledge_set_status(pledge=pledge, to_status=to_status, actor=actor, reason=reason)
    if pledge.installment_plan:
        installments_cancel(pledge_ids=[pledge.pk])  # nothing more is charged
    if not pledge.is_late:
        _adjust_backer_count(pledge=pledge, delta=-1)
    _reward_free_slot(reward_id=pledge.reward_id)
    pledge_addons_free_all(pledge=pledge)
    campaign_figures_changed(campaign_id=pledge.campaign_id)
    pledge_id = pledge.pk
    transaction.on_commit(lambda: _enqueue_email("send_pledge_refunded", pledge_id))


def _enqueue_email(task_name: str, object_id: int, *args) -> None:
    from . import tasks  # tasks import the notifications, which import this app's models

    getattr(tasks, task_name).delay(object_id, *args)


def pledge_send_refund(*, pledge: Pledge) -> GatewayResult:
    """Send a refund the ledger already records to the gateway (idempotent by pledge); return its result.

    A pledge whose amount was raised was charged more than once: what is left of each charge is
    refunded under its own key (``pledge_refund_requests``). The part paid from the backer's
    balance went back to the balance in the ledger: only the card's part is sent, and a pledge
    paid wholly from the balance sends nothing.
    """
    requests = pledge_refund_requests(pledges=[(pledge.pk, pledge.card_amount, pledge.payment_reference)])
    if not requests:
        return _NOTHING_AT_THE_GATEWAY
    results = get_gateway().refund_many(requests=requests)
    for result in results:
        if not result.ok:
            logger.error("Refund of pledge %s failed at the gateway: %s %s", pledge.pk, result.code, result.message)
            return result
    return results[0]


def pledge_reconcile_pending(*, pledge: Pledge) -> Pledge:
    """Finish a pledge left pending (the process died around the charge); return it.

    Asks the gateway what happened under the pledge's charge key: a successful charge is
    held (or refunded if the campaign closed meanwhile); anything else fails the pledge and
    frees its reward slot. A legacy replacement from a change of amount finishes its change
    the same way that does, never becoming a second held pledge: swapped in for the old pledge
    (returned to the backer), or failed and its charge refunded if the old pledge is no longer
    held or the campaign no longer takes changes. Idempotent.
    """
    if not pledge.card_amount:
        found = _NOTHING_AT_THE_GATEWAY  # paid wholly from the balance, reserved when it was written
    else:
        found = get_gateway().find_operation(idempotency_key=charge_key(pledge.pk)) or GatewayResult(
            ok=False, code="abandoned", message="The payment was never completed."
        )
    if pledge.is_late:
        from .late_pledges import late_pledge_record_charge  # it builds on this module

        return late_pledge_record_charge(pledge_id=pledge.pk, result=found)
    if pledge.replaces_id is not None:
        return _pledge_change_amount_complete(old_id=pledge.replaces_id, new_id=pledge.pk, result=found, actor=None)
    return _pledge_record_charge(pledge_id=pledge.pk, result=found)

"""Late pledges: the initiator's offer (set before the deadline, closed for good) and the backers' pledges.

An initiator sets up late pledges while the campaign is live and before its deadline: chosen
rewards, each at a late price no lower than its campaign price (``RewardTier.minimum_amount``),
editable until the deadline, closed at any time after and for good. Once the campaign has
succeeded (never for a failed or cancelled one: ``LatePledgeOffer.takes_late_pledges``) backers
pledge late: charged at once, held in the campaign's escrow (the same hold posting as every
pledge) and released to the initiator by settlement's weekly batches (``settlement.late_release``).

A late pledge is a ``Pledge`` with ``is_late``: it claims its reward's slot with the same
conditional UPDATE as every pledge (never oversold), keeps its idempotency key per backer, and a
backer who already has a pledge on the campaign (held, released or being paid) cannot add one.
It stays out of the campaign's total at the deadline (``pledged_amount``, ``backer_count``).
Staff may refund one until its batch releases it (``pledges.services.pledge_refund``).

Order of work as in ``pledges.services``: a short transaction claims the slot and writes the
pending pledge, the gateway is called outside any lock (key ``charge:pledge:<id>``), and a
second short transaction holds it, under the offer's row lock, so closing the offer and a hold
are serialised: a charge that lands after closing is refunded, never held.
"""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, NotFound
from crowdfund_site.money import check_amount, currency_exponent, format_amount
from crowdfund_site.page_cache import campaign_page_group, page_cache_invalidate
from escrow.gateway import GatewayResult, get_gateway
from escrow.ledger import ledger_accounts_get_or_create_cached, ledger_post
from escrow.vocabulary import hold_account_specs, hold_posting, refund_key
from projects.models import (
    Campaign,
    FundingModel,
    LatePledgeOffer,
    LatePledgeOfferStatus,
    LatePledgeReward,
    RewardTier,
)
from projects.services import campaign_figures_changed, campaign_lock

from .models import OPEN_STATUSES, Pledge, PledgeStatus
from .services import (
    _charge,
    _clean_idempotency_key,
    _enqueue_email,
    _ensure_same_request,
    _fingerprint,
    _pledge_fail,
    _pledge_outcome,
    _reward_claim_slot,
    _sold_out,
    already_backing,
    pledge_set_status,
    pledge_shipping,
)

# At most this many rewards in one offer (a campaign rarely has more tiers).
LATE_OFFER_MAX_REWARDS = 50


# --- The initiator's offer --------------------------------------------------------------------


def _offer_of(campaign: Campaign, *, lock: bool = False) -> LatePledgeOffer | None:
    offers = LatePledgeOffer.objects.filter(campaign_id=campaign.pk)
    if lock:
        offers = offers.select_for_update()
    return offers.first()


def _ensure_initiator(campaign: Campaign, actor) -> None:
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed(_("Only the campaign's initiator can manage its late pledges."), code="not_initiator")


def _clean_prices(*, campaign: Campaign, prices: dict[int, int]) -> list[tuple[RewardTier, int]]:
    """Return the (reward, late price) pairs of ``prices`` ({reward id: price}); raise InvalidInput."""
    if not prices:
        raise InvalidInput(_("Choose at least one reward for late pledges."), code="rewards_required", field="rewards")
    if len(prices) > LATE_OFFER_MAX_REWARDS:
        raise InvalidInput(
            _("Late pledges may offer at most %(limit)s rewards.") % {"limit": LATE_OFFER_MAX_REWARDS},
            code="too_many_rewards",
            field="rewards",
        )
    rewards = {r.pk: r for r in RewardTier.objects.filter(campaign_id=campaign.pk, pk__in=list(prices))}
    pairs = []
    for reward_id, price in prices.items():
        reward = rewards.get(reward_id)
        if reward is None:
            raise InvalidInput(_("That reward is not part of this campaign."), code="invalid_reward", field="rewards")
        try:
            check_amount(price, campaign.currency, max_minor=settings.PLEDGE_MAX_MINOR)
        except InvalidInput as error:
            raise InvalidInput(error.message, code=error.code, field="rewards") from None
        if price < reward.minimum_amount:
            raise InvalidInput(
                _("The late price of “%(reward)s” must be at least its campaign price, %(minimum)s.")
                % {"reward": reward.title, "minimum": format_amount(reward.minimum_amount, campaign.currency)},
                code="late_price_below_campaign_price",
                field="rewards",
            )
        pairs.append((reward, price))
    return pairs


def late_offer_set(*, campaign: Campaign, actor, prices: dict[int, int]) -> LatePledgeOffer:
    """Open late pledges for ``prices`` ({reward id: late price}), or replace the open offer's rewards.

    Only the initiator, only while the campaign is live and before its deadline. Every price is
    at least its reward's campaign price. A closed offer is never reopened (Conflict
    ``late_pledges_closed``). Locks the campaign row, so the deadline's close waits for it.
    Audited (``late_offer_open`` / ``late_offer_update``, with the prices). Raises NotAllowed,
    InvalidInput (no rewards, a reward of another campaign, a price out of range or below the
    campaign price) or Conflict (``campaign_not_live``, ``late_pledges_closed``,
    ``late_pledges_not_offered``: a loan or a campaign with milestones); nothing is changed then.
    """
    _ensure_initiator(campaign, actor)
    pairs = _clean_prices(campaign=campaign, prices=prices)
    with transaction.atomic(durable=True):
        campaign = campaign_lock(campaign_id=campaign.pk)
        if not campaign.is_open_for_pledges:
            raise Conflict(
                _("Late pledges can be set up only while the campaign is live, before its deadline."),
                code="campaign_not_live",
            )
        if campaign.funding_model == FundingModel.DEBT or campaign.has_milestone_plan:
            # A loan's lenders and a plan's staged tranches settle at the deadline only.
            raise Conflict(
                _("Late pledges are not offered on loans or on campaigns with milestones."),
                code="late_pledges_not_offered",
            )
        offer = _offer_of(campaign, lock=True)
        if offer is not None and not offer.is_open:
            raise Conflict(_("Late pledges were closed and cannot be opened again."), code="late_pledges_closed")
        now = timezone.now()
        action = "late_offer_update"
        if offer is None:
            offer = LatePledgeOffer.objects.create(campaign=campaign, opened_by=actor, opened_at=now, updated_at=now)
            action = "late_offer_open"
        else:
            offer.updated_at = now
            offer.save(update_fields=["updated_at"])
            offer.rewards.all().delete()
        LatePledgeReward.objects.bulk_create(
            [LatePledgeReward(offer=offer, reward=reward, price=price) for reward, price in pairs]
        )
        audit_record(
            actor=actor,
            action=action,
            obj=campaign,
            details={"prices": {str(reward.pk): price for reward, price in pairs}, "currency": campaign.currency},
        )
        page_cache_invalidate(campaign_page_group(campaign.slug))
    return offer


def late_offer_close(*, campaign: Campaign, actor) -> LatePledgeOffer:
    """Close the campaign's late pledges for good (the initiator, at any time); return the offer.

    Pledges already held stay held and are released by their weekly batch. Locks the offer row,
    which every late pledge's hold takes too, so no pledge is held after this commits (a charge
    in flight is refunded). Audited (``late_offer_close``). Raises NotAllowed, NotFound (no
    offer) or Conflict (``late_pledges_closed``: already closed).
    """
    _ensure_initiator(campaign, actor)
    with transaction.atomic(durable=True):
        offer = _offer_of(campaign, lock=True)
        if offer is None:
            raise NotFound(_("This campaign has no late pledges."), code="no_late_pledges")
        if not offer.is_open:
            raise Conflict(_("Late pledges are already closed."), code="late_pledges_closed")
        offer.status = LatePledgeOfferStatus.CLOSED
        offer.closed_at = timezone.now()
        offer.closed_by = actor
        offer.save(update_fields=["status", "closed_at", "closed_by"])
        audit_record(actor=actor, action="late_offer_close", obj=campaign)
        page_cache_invalidate(campaign_page_group(campaign.slug))
    return offer


# --- A backer's late pledge -------------------------------------------------------------------


def _late_price(offer: LatePledgeOffer, reward: RewardTier | None) -> int:
    if reward is None:
        raise InvalidInput(_("Choose a reward for your late pledge."), code="reward_required", field="reward")
    price = next((r.price for r in offer.rewards.all() if r.reward_id == reward.pk), None)
    if price is None:
        raise InvalidInput(
            _("The “%(reward)s” reward is not offered to late backers.") % {"reward": reward.title},
            code="reward_not_offered_late",
            field="reward",
        )
    return price


def _late_check_request(
    *, backer, campaign: Campaign, reward: RewardTier | None, amount: int, currency: str, payment_token: str
) -> LatePledgeOffer:
    currency_exponent(currency)
    if currency != campaign.currency:
        raise InvalidInput(
            f"This campaign takes pledges in {campaign.currency}, not {currency}.",
            code="wrong_currency",
            field="currency",
        )
    check_amount(amount, currency, max_minor=settings.PLEDGE_MAX_MINOR)
    if not (payment_token or "").strip():
        raise InvalidInput(_("Choose a payment method."), code="payment_token_required", field="payment_token")
    offer = _offer_of(campaign)
    if offer is None or not offer.takes_late_pledges(campaign):
        raise Conflict(_("This campaign is not taking late pledges."), code="late_pledges_not_open")
    if backer.pk == campaign.initiator_id:
        raise NotAllowed(_("You cannot back your own campaign."), code="own_campaign")
    if reward is not None and reward.campaign_id != campaign.pk:
        raise InvalidInput(_("That reward is not part of this campaign."), code="invalid_reward", field="reward")
    price = _late_price(offer, reward)
    if amount < price:
        raise InvalidInput(
            _("The “%(reward)s” reward needs a late pledge of at least %(minimum)s.")
            % {"reward": reward.title, "minimum": format_amount(price, currency)},
            code="below_reward_minimum",
            field="amount",
        )
    if reward.sold_out:
        raise _sold_out(reward)
    # One managed pledge per backer: one already held or released on the campaign (which the
    # open-pledge constraint no longer sees once settled) rules a late one out too.
    if Pledge.objects.filter(
        campaign_id=campaign.pk, backer_id=backer.pk, status__in=[*OPEN_STATUSES, PledgeStatus.RELEASED]
    ).exists():
        raise already_backing()
    return offer


def late_pledge_create(
    *,
    backer,
    campaign: Campaign,
    reward: RewardTier | None,
    amount: int,
    currency: str,
    payment_token: str,
    idempotency_key: str,
    shipping_country: str = "",
) -> Pledge:
    """Charge a late backer and hold ``amount`` (plus the reward's shipping) in escrow; return the held pledge.

    Only while the campaign's late pledges are open and it has succeeded, for a reward of the
    offer, at least its late price. The reward's slot is claimed with the conditional UPDATE of
    every pledge before the card is charged (Conflict ``sold_out``, never oversold). Idempotent
    per (backer, ``idempotency_key``) as ``pledge_create``: a retry returns the same pledge or
    refusal without charging again; the key with another body is Conflict ``idempotency_key_reused``.

    Raises InvalidInput (amount, currency, reward missing or not offered late, below its late
    price, shipping), NotAllowed (own campaign), Conflict (``late_pledges_not_open``, ``sold_out``,
    ``already_backing``), PaymentDeclined (the pledge is kept as failed, its slot freed) or
    PaymentUnavailable (retry with the same key). Once held, the receipt is e-mailed.
    """
    key = _clean_idempotency_key(idempotency_key)
    fingerprint = "late|" + _fingerprint(
        campaign_id=campaign.pk,
        reward_id=reward.pk if reward else None,
        amount=amount,
        currency=currency,
        token=payment_token,
        shipping_country=shipping_country,
    )
    try:
        _late_check_request(
            backer=backer,
            campaign=campaign,
            reward=reward,
            amount=amount,
            currency=currency,
            payment_token=payment_token,
        )
        country, shipping = pledge_shipping(
            reward=reward, shipping_country=shipping_country, amount=amount, currency=currency
        )
        pledge = _late_pledge_reserve(
            backer=backer,
            campaign=campaign,
            reward=reward,
            amount=amount + shipping,
            currency=currency,
            key=key,
            fingerprint=fingerprint[:255],
            shipping_country=country,
            shipping_amount=shipping,
        )
    except (InvalidInput, NotAllowed, Conflict):
        pledge = Pledge.objects.filter(backer=backer, idempotency_key=key).first()
        if pledge is None:
            raise
    _ensure_same_request(pledge, fingerprint[:255])
    if pledge.status == PledgeStatus.PENDING:
        pledge = late_pledge_record_charge(pledge_id=pledge.pk, result=_charge(pledge=pledge, token=payment_token))
    return _pledge_outcome(pledge)


def _late_pledge_reserve(*, backer, campaign, reward, amount, currency, key, fingerprint, **shipping) -> Pledge:
    """Claim the reward's slot and write the pending late pledge in one transaction; return it.

    The pledge this key already made, if any (nothing claimed then). Raises Conflict ``sold_out``
    or ``already_backing`` (the one-open-pledge constraint).
    """
    try:
        with transaction.atomic():
            if not _reward_claim_slot(reward_id=reward.pk, in_window=False):
                raise _sold_out(reward)
            return Pledge.objects.create(
                backer=backer,
                campaign=campaign,
                reward=reward,
                amount=amount,
                currency=currency,
                idempotency_key=key,
                request_fingerprint=fingerprint,
                is_late=True,
                **shipping,
            )
    except IntegrityError:
        pledge = Pledge.objects.filter(backer=backer, idempotency_key=key).first()
        if pledge is None:
            raise already_backing() from None
        return pledge


def late_pledge_record_charge(*, pledge_id: int, result: GatewayResult) -> Pledge:
    """Record the gateway's answer for a pending late pledge: hold it, or fail it; return it.

    Holds only while the offer is open (its row locked, as ``late_offer_close`` locks it): a
    charge that went through after closing fails the pledge and is refunded at the gateway.
    Idempotent: a pledge no longer pending is returned as it is (a charge that went through for
    one already failed is refunded). Also the sweeper's way for late pledges
    (``pledge_reconcile_pending``). A transient failure leaves it pending.
    """
    if result.transient:
        return Pledge.objects.get(pk=pledge_id)
    refund = False
    with transaction.atomic():
        pledge = Pledge.objects.select_for_update().get(pk=pledge_id)
        offer = LatePledgeOffer.objects.select_for_update().filter(campaign_id=pledge.campaign_id).first()
        pledge.card_fingerprint = result.card_fingerprint
        if pledge.status == PledgeStatus.PENDING and not result.ok:
            _pledge_fail(pledge=pledge, code=result.code, message=result.message)
        elif pledge.status == PledgeStatus.PENDING:
            pledge.payment_reference = result.reference
            campaign = Campaign.objects.only("status").get(pk=pledge.campaign_id)
            if offer is None or not offer.takes_late_pledges(campaign):
                _pledge_fail(
                    pledge=pledge,
                    code="campaign_not_live",
                    message=_("Late pledges closed before the payment completed; the charge was refunded."),
                )
                refund = True
            else:
                _late_pledge_hold(pledge=pledge)
        elif pledge.status == PledgeStatus.FAILED and result.ok:
            refund = True
    if refund:
        get_gateway().refund(
            idempotency_key=refund_key(pledge.pk), charge_reference=result.reference, amount=pledge.amount
        )
    return pledge


def _late_pledge_hold(*, pledge: Pledge) -> None:
    ids = {"backer_id": pledge.backer_id, "campaign_id": pledge.campaign_id}
    accounts = ledger_accounts_get_or_create_cached(specs=hold_account_specs(**ids), currency=pledge.currency)
    ledger_post(
        posting=hold_posting(
            pledge_id=pledge.pk, amount=pledge.amount, currency=pledge.currency, accounts=accounts, **ids
        )
    )
    pledge.held_at = timezone.now()
    pledge_set_status(
        pledge=pledge,
        to_status=PledgeStatus.HELD,
        actor=pledge.backer,
        reason="late pledge",
        save_fields=("payment_reference", "card_fingerprint", "held_at"),
    )
    campaign_figures_changed(campaign_id=pledge.campaign_id)  # the reward's slots left moved
    pledge_id = pledge.pk
    transaction.on_commit(lambda: _enqueue_email("pledge_held_follow_up", pledge_id, None))


def late_pledge_return_check(*, pledge: Pledge, to_status: str) -> None:
    """Refuse returning a late pledge the backer's way (cancel); staff refunds go on while it is held.

    Called by ``pledges.services`` under the pledge's row lock, in place of the campaign's totals
    (a late pledge was never in them). Raises Conflict ``late_pledge_not_cancellable``.
    """
    if to_status == PledgeStatus.CANCELLED:
        raise Conflict(
            _("A late pledge cannot be cancelled: it is charged at once and released to the initiator weekly."),
            code="late_pledge_not_cancellable",
        )

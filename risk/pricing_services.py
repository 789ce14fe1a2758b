"""Writes of pricing advice: the initiator's dashboard applies one suggestion with one click.

Each service makes the advice again first, outside any transaction (the forecast is numpy work):
if it no longer suggests the change, Conflict ``advice_stale`` and nothing changes. Then, in one
transaction, the change through its own service (which checks the initiator, the state and the
input under lock) and an audit event with the explanation shown and the forecast's total and the
goal's chance without and with the suggestion. Raises NotAllowed, Conflict or InvalidInput; on
refusal nothing changes.
"""

from django.db import transaction
from django.utils.translation import gettext

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import format_amount
from projects.live_changes import campaign_deadline_extend, reward_price_lower, reward_tier_add_live
from projects.models import Campaign, CampaignDeadlineExtension, RewardTier
from projects.services import reward_price_step_open
from promotion.services import ending_notices_follow_deadline

from .selectors import (
    ADD_LOWER_TIER,
    EXTEND_DEADLINE,
    LOWER_PRICE,
    OPEN_PRICE_STEP,
    pricing_advice_for_campaign,
)

AUDIT_ACTION = "pricing_advice_apply"


def _ensure_initiator(campaign: Campaign, actor) -> None:
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed("Only the campaign's initiator can do this.", code="not_initiator")


def _advice_now(campaign: Campaign, *, kind: str, reward_id: int | None = None):
    """Return the campaign's current suggestion of ``kind`` (for ``reward_id``), or Conflict ``advice_stale``."""
    for item in pricing_advice_for_campaign(campaign):
        if item.kind == kind and (reward_id is None or item.reward_id == reward_id):
            return item
    raise Conflict(
        gettext("This advice no longer applies: the forecast or the reward has changed since."),
        code="advice_stale",
    )


def _audit(*, actor, obj, advice, **applied) -> None:
    audit_record(
        actor=actor,
        action=AUDIT_ACTION,
        obj=obj,
        reason=advice.explanation,
        details={
            "kind": advice.kind,
            **applied,
            "forecast_total": advice.forecast_total,
            "total_without": advice.total_without,
            "total_with": advice.total_with,
            "chance_without": round(advice.chance_without, 4),
            "chance_with": round(advice.chance_with, 4),
        },
    )


def pricing_advice_apply(*, campaign: Campaign, actor, reward_id: int, price: int, slots: int) -> RewardTier:
    """Apply rule 1: open a next price step on ``reward_id``, as the initiator confirmed it.

    ``projects.services.reward_price_step_open`` checks the price and the slots under lock.
    """
    _ensure_initiator(campaign, actor)
    advice = _advice_now(campaign, kind=OPEN_PRICE_STEP, reward_id=reward_id)
    reward = RewardTier.objects.get(pk=reward_id, campaign=campaign)
    with transaction.atomic():
        reward = reward_price_step_open(reward=reward, actor=actor, price=price, slots=slots)
        _audit(
            actor=actor,
            obj=reward,
            advice=advice,
            price=price,
            slots=slots,
            suggested_price=advice.price,
            suggested_slots=advice.slots,
        )
    return reward


def pricing_advice_add_tier(*, campaign: Campaign, actor, title: str, price: int, description: str = "") -> RewardTier:
    """Apply rule 2's tier: add a tier at ``price``, below the cheapest tier's price now.

    The initiator may change the suggested title and price; a price not below the cheapest tier
    is not this advice (InvalidInput ``price_not_lower``).
    """
    _ensure_initiator(campaign, actor)
    advice = _advice_now(campaign, kind=ADD_LOWER_TIER)
    if price >= advice.cheapest_price:
        raise InvalidInput(
            gettext("The new tier's price must be below your cheapest tier's (%(price)s).")
            % {"price": format_amount(advice.cheapest_price, campaign.currency)},
            code="price_not_lower",
            field="price",
        )
    with transaction.atomic():
        reward = reward_tier_add_live(
            campaign=campaign, actor=actor, title=title, minimum_amount=price, description=description
        )
        _audit(actor=actor, obj=reward, advice=advice, price=price, suggested_price=advice.price)
    return reward


def pricing_advice_extend_deadline(*, campaign: Campaign, actor, days: int) -> CampaignDeadlineExtension:
    """Apply rule 2's extension: move the deadline ``days`` later, once, and tell every backer.

    ``projects.live_changes.campaign_deadline_extend`` checks the days and the once-only rule under
    the campaign's lock; the "Remind me" e-mails not yet sent move with the deadline, in the same
    transaction.
    """
    _ensure_initiator(campaign, actor)
    advice = _advice_now(campaign, kind=EXTEND_DEADLINE)
    with transaction.atomic():
        extension = campaign_deadline_extend(campaign=campaign, actor=actor, days=days)
        ending_notices_follow_deadline(campaign=extension.campaign)
        _audit(
            actor=actor,
            obj=extension.campaign,
            advice=advice,
            days=days,
            suggested_days=advice.days,
            from_deadline=extension.from_deadline.isoformat(),
            to_deadline=extension.to_deadline.isoformat(),
        )
    return extension


def pricing_advice_lower_price(*, campaign: Campaign, actor, reward_id: int, price: int) -> RewardTier:
    """Apply rule 3: lower the price of ``reward_id``, which nobody takes, for the pledges made from now on.

    ``projects.live_changes.reward_price_lower`` refuses it once anyone holds the tier, so no
    backer's price ever changes.
    """
    _ensure_initiator(campaign, actor)
    advice = _advice_now(campaign, kind=LOWER_PRICE, reward_id=reward_id)
    reward = RewardTier.objects.get(pk=reward_id, campaign=campaign)
    with transaction.atomic():
        reward = reward_price_lower(reward=reward, actor=actor, price=price)
        _audit(
            actor=actor,
            obj=reward,
            advice=advice,
            price=price,
            from_price=advice.current_price,
            suggested_price=advice.price,
        )
    return reward

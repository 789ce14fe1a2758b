"""Changes a live campaign may still take, each fair to the backers who pledged already.

The pricing advice of the initiator's dashboard (``risk``) applies its suggestions through these:

- ``reward_tier_add_live``: a new, cheaper way in. Nothing anyone chose changes.
- ``reward_price_lower``: a lower price for a tier nobody holds. With no backer on it, nobody who
  chose it at the old price sees it cheaper; a pledge that took it meanwhile makes this refuse.
- ``campaign_deadline_extend``: the deadline moved later once, within the longest campaign
  (``MAX_DURATION_DAYS`` from launch); every backer is e-mailed.

The goal is never among them: backers pledged towards it, and moving it would change what they
agreed to (all-or-nothing refunds them if it is missed). Each locks the campaign first, so none of
them runs beside a close or a status change, and records what changed. Raises NotAllowed,
Conflict or InvalidInput; on refusal nothing changes.
"""

import math
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from crowdfund_site.exceptions import Conflict, InvalidInput
from crowdfund_site.money import check_amount, format_amount
from crowdfund_site.page_cache import DISCOVER_GROUP, campaign_page_group, page_cache_invalidate

from .models import Campaign, CampaignDeadlineExtension, CampaignStatus, RewardTier, RewardTierChange
from .services import (
    MAX_DURATION_DAYS,
    _clean_reward_fields,
    _ensure_initiator,
    campaign_lock,
    campaign_lock_beside_pledges,
)

DAY = timedelta(days=1)


def _ensure_open(campaign: Campaign, refusal: str) -> None:
    if not campaign.is_open_for_pledges:
        raise Conflict(refusal, code="invalid_state")


@transaction.atomic
def reward_tier_add_live(
    *, campaign: Campaign, actor, title: str, minimum_amount: int, description: str = ""
) -> RewardTier:
    """Add an unlimited reward tier (nothing shipped) to a campaign taking pledges; only its initiator may.

    A new tier changes nothing any backer chose, so unlike the other rewards' fields it needs no
    draft. Recorded as a RewardTierChange from nothing. Raises NotAllowed, Conflict (not taking
    pledges) or InvalidInput (title, price).
    """
    campaign = campaign_lock_beside_pledges(campaign_id=campaign.pk)
    _ensure_initiator(campaign, actor)
    _ensure_open(campaign, gettext("A reward can be added this way only while the campaign takes pledges."))
    fields = _clean_reward_fields(
        campaign, {"title": title, "description": description or "", "minimum_amount": minimum_amount}
    )
    reward = RewardTier.objects.create(campaign=campaign, price_steps=[], **fields)
    RewardTierChange.objects.create(
        reward=reward,
        actor=actor,
        changes={"title": [None, reward.title], "minimum_amount": [None, reward.minimum_amount]},
    )
    page_cache_invalidate(campaign_page_group(campaign.slug))
    return reward


@transaction.atomic
def reward_price_lower(*, reward: RewardTier, actor, price: int) -> RewardTier:
    """Lower the price of a tier nobody holds, for the pledges made from now on; only the initiator may.

    Locks the campaign (FOR NO KEY UPDATE, as every reward change does), then the tier, so a
    pledge claiming it at the same moment waits: if one holds it (pending or held), Conflict
    ``reward_has_backers``, and nobody who chose the tier at its old price ever sees it
    cheaper. A tier with price steps keeps its plan (Conflict ``reward_has_steps``); its price
    must go down (InvalidInput ``price_not_lower``). Recorded as a RewardTierChange.
    """
    campaign = campaign_lock_beside_pledges(campaign_id=reward.campaign_id)
    _ensure_initiator(campaign, actor)
    _ensure_open(campaign, gettext("A reward's price can be lowered only while the campaign takes pledges."))
    reward = RewardTier.objects.select_for_update().get(pk=reward.pk)
    if reward.claimed_count > 0:
        raise Conflict(
            gettext("“%(reward)s” has backers now: its price stays, so that they keep what they chose.")
            % {"reward": reward.title},
            code="reward_has_backers",
        )
    if reward.price_steps:
        raise Conflict(
            gettext("“%(reward)s” has price steps: its prices follow them.") % {"reward": reward.title},
            code="reward_has_steps",
        )
    check_amount(price, campaign.currency)
    if price >= reward.minimum_amount:
        raise InvalidInput(
            gettext("The new price must be lower than the price now (%(price)s).")
            % {"price": format_amount(reward.minimum_amount, campaign.currency)},
            code="price_not_lower",
            field="price",
        )
    RewardTierChange.objects.create(
        reward=reward, actor=actor, changes={"minimum_amount": [reward.minimum_amount, price]}
    )
    reward.minimum_amount = price
    reward.save(update_fields=["minimum_amount"])
    page_cache_invalidate(campaign_page_group(campaign.slug))
    return reward


def deadline_extension_days_left(campaign: Campaign) -> int:
    """Return the whole days the deadline may still move later (0: not at all, e.g. extended once)."""
    if campaign.launched_at is None or campaign.deadline is None:
        return 0
    if CampaignDeadlineExtension.objects.filter(campaign_id=campaign.pk).exists():
        return 0
    room = campaign.launched_at + timedelta(days=MAX_DURATION_DAYS) - campaign.deadline
    return max(int(room / DAY), 0)


@transaction.atomic
def campaign_deadline_extend(*, campaign: Campaign, actor, days: int) -> CampaignDeadlineExtension:
    """Move a live campaign's deadline ``days`` later, once; only its initiator may.

    The new deadline stays within MAX_DURATION_DAYS of launch (InvalidInput ``extension_too_long``),
    and a campaign is extended at most once (Conflict ``already_extended``; the one-to-one row
    holds it even against a second request at the same moment). Locks the campaign FOR UPDATE, so
    closing waits for this and never closes a campaign just extended. Records a
    CampaignDeadlineExtension and, after commit, e-mails every backer the new deadline (each
    once). Raises NotAllowed, Conflict (not taking pledges) or InvalidInput.
    """
    campaign = campaign_lock(campaign_id=campaign.pk)
    _ensure_initiator(campaign, actor)
    if campaign.status != CampaignStatus.LIVE or campaign.deadline is None or campaign.deadline <= timezone.now():
        raise Conflict(
            gettext("The deadline can be extended only while the campaign takes pledges."), code="invalid_state"
        )
    if CampaignDeadlineExtension.objects.filter(campaign=campaign).exists():
        raise Conflict(gettext("This campaign's deadline has already been extended once."), code="already_extended")
    most = deadline_extension_days_left(campaign)
    latest = campaign.launched_at + timedelta(days=MAX_DURATION_DAYS)
    if most < 1:
        raise Conflict(
            gettext("This campaign already runs the longest a campaign may (%(max)s days from launch).")
            % {"max": MAX_DURATION_DAYS},
            code="extension_too_long",
        )
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= most:
        raise InvalidInput(
            gettext(
                "A campaign runs at most %(max)s days: the deadline can move from 1 to %(most)s days later "
                "(until %(latest)s)."
            )
            % {
                "max": MAX_DURATION_DAYS,
                "most": most,
                "latest": date_format(timezone.localtime(latest), "DATETIME_FORMAT"),
            },
            code="extension_too_long",
            field="days",
        )
    extension = CampaignDeadlineExtension.objects.create(
        campaign=campaign, from_deadline=campaign.deadline, to_deadline=campaign.deadline + days * DAY, actor=actor
    )
    campaign.deadline = extension.to_deadline
    campaign.duration_days = min(math.ceil((campaign.deadline - campaign.launched_at) / DAY), MAX_DURATION_DAYS)
    campaign.save(update_fields=["deadline", "duration_days", "updated_at"])
    page_cache_invalidate(campaign_page_group(campaign.slug), DISCOVER_GROUP)
    extension_id = extension.pk
    transaction.on_commit(lambda: _enqueue_deadline_extension_email(extension_id))
    return extension


def _enqueue_deadline_extension_email(extension_id: int) -> None:
    from .tasks import send_deadline_extension_email

    send_deadline_extension_email.delay(extension_id)

"""Add-ons: items with their own price and optional limit that a backer adds to any pledge.

The initiator adds, edits and removes them (``addon_create`` / ``_update`` / ``_delete``) before
review or while the campaign is live; the campaign row's ``addon_count`` follows, so the pledge
form and the pledge path read none for a campaign without any. A price is fixed once the campaign
has launched (nobody who added it pays another price), and a limit never goes below the units
already taken. Pledges claim and free units in ``pledges.addons``.
"""

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext

from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import check_amount

from .models import (
    ADDON_DESCRIPTION_MAX_LENGTH,
    ADDON_TITLE_MAX_LENGTH,
    EDITABLE_STATUSES,
    MAX_ADDONS,
    REWARD_QUANTITY_LIMIT_MAX,
    AddOn,
    Campaign,
    CampaignStatus,
)

# Before review, or once live: not while a reviewer reads the campaign, nor after it ended.
EDIT_STATUSES = EDITABLE_STATUSES | {CampaignStatus.APPROVED, CampaignStatus.LIVE}
_FIELDS = {"title", "description", "price", "quantity_limit"}


def _campaign_for_edit(campaign_id: int, actor) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed("Only the campaign's initiator can do this.", code="not_initiator")
    if campaign.status not in EDIT_STATUSES:
        raise Conflict(
            gettext("Add-ons can be changed before review or while the campaign is live."), code="invalid_state"
        )
    return campaign


def _clean(campaign: Campaign, *, title: str, description: str, price: int, quantity_limit: int | None) -> dict:
    try:
        check_amount(price, campaign.currency)
    except InvalidInput as error:
        raise InvalidInput(error.message, code=error.code, field="price") from None
    title = (title or "").strip()
    if not title:
        raise InvalidInput(gettext("Give the add-on a title."), code="required", field="title")
    description = (description or "").strip()
    for value, field, limit in (
        (title, "title", ADDON_TITLE_MAX_LENGTH),
        (description, "description", ADDON_DESCRIPTION_MAX_LENGTH),
    ):
        if len(value) > limit:
            raise InvalidInput(
                gettext("This may be at most %(limit)s characters (it has %(length)s).")
                % {"limit": f"{limit:,}", "length": f"{len(value):,}"},
                code="too_long",
                field=field,
            )
    if quantity_limit is not None and not (
        isinstance(quantity_limit, int) and 1 <= quantity_limit <= REWARD_QUANTITY_LIMIT_MAX
    ):
        raise InvalidInput(
            gettext("The limit is a whole number from 1 to %(max)s, or empty for no limit.")
            % {"max": f"{REWARD_QUANTITY_LIMIT_MAX:,}"},
            code="invalid_quantity_limit",
            field="quantity_limit",
        )
    return {"title": title, "description": description, "price": price, "quantity_limit": quantity_limit}


@transaction.atomic
def addon_create(
    *, campaign: Campaign, actor, title: str, price: int, description: str = "", quantity_limit: int | None = None
) -> AddOn:
    """Add an add-on to the campaign (initiator; before review or while live); return it.

    Locks the campaign row (the count of add-ons is final under it). Raises NotAllowed (not the
    initiator), Conflict ``invalid_state``, InvalidInput (bad fields, ``too_many_addons``).
    """
    campaign = _campaign_for_edit(campaign.pk, actor)
    if campaign.addon_count >= MAX_ADDONS:
        raise InvalidInput(
            gettext("A campaign may have at most %(max)s add-ons.") % {"max": MAX_ADDONS}, code="too_many_addons"
        )
    fields = _clean(campaign, title=title, description=description, price=price, quantity_limit=quantity_limit)
    addon = AddOn.objects.create(campaign=campaign, **fields)
    Campaign.objects.filter(pk=campaign.pk).update(addon_count=F("addon_count") + 1)
    return addon


@transaction.atomic
def addon_update(*, addon: AddOn, actor, **fields) -> AddOn:
    """Change an add-on's title, description, price (before launch only) or limit (not below what is taken).

    Locks the campaign row, then the add-on's, the order pledges never take (they lock add-on
    rows only), so this cannot deadlock with them. Raises as ``addon_create``, and Conflict
    ``addon_price_locked`` / ``addon_limit_below_taken``.
    """
    campaign = _campaign_for_edit(addon.campaign_id, actor)
    addon = AddOn.objects.select_for_update().get(pk=addon.pk)
    unknown = set(fields) - _FIELDS
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_field")
    cleaned = _clean(
        campaign,
        title=fields.get("title", addon.title),
        description=fields.get("description", addon.description),
        price=fields.get("price", addon.price),
        quantity_limit=fields.get("quantity_limit", addon.quantity_limit),
    )
    if cleaned["price"] != addon.price and campaign.launched_at is not None:
        raise Conflict(
            gettext("The campaign has launched: the price of an add-on can no longer change."),
            code="addon_price_locked",
            field="price",
        )
    if cleaned["quantity_limit"] is not None and cleaned["quantity_limit"] < addon.claimed_count:
        raise Conflict(
            gettext("Backers already took %(taken)s of this add-on: the limit cannot be lower.")
            % {"taken": addon.claimed_count},
            code="addon_limit_below_taken",
            field="quantity_limit",
        )
    for name, value in cleaned.items():
        setattr(addon, name, value)
    addon.save(update_fields=list(cleaned))
    return addon


@transaction.atomic
def addon_delete(*, addon: AddOn, actor) -> None:
    """Remove an add-on no pledge ever carried (one that was taken stays, for its backers' records)."""
    campaign = _campaign_for_edit(addon.campaign_id, actor)
    if addon.pledge_lines.exists():
        raise Conflict(
            gettext("Backers have taken this add-on, so it cannot be removed. Set its limit to stop new ones."),
            code="addon_taken",
        )
    AddOn.objects.filter(pk=addon.pk).delete()
    Campaign.objects.filter(pk=campaign.pk).update(addon_count=F("addon_count") - 1)

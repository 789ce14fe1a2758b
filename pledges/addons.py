"""Add-ons on a pledge: the backer's choice checked, units claimed and freed, the pledge's rows written.

A pledge's add-ons are charged, held, released and refunded with it: their total is part of
``Pledge.amount`` (and kept in ``Pledge.addons_amount``), so the hold, the refunds and settlement
need nothing of their own. What this module adds is the units: each add-on's ``claimed_count`` is
moved by one conditional UPDATE per add-on (``_claim``), which the database re-checks against
the limit under the row lock, so concurrent pledges never take more units than the limit, exactly
as ``pledges.services._reward_claim_slot`` does for a reward tier. Units are claimed before the
card is charged and freed when the pledge fails, is cancelled or is refunded by staff (settled
pledges keep theirs, as they keep their reward slot).

A pledge without add-ons never reaches this module: ``addons_amount`` 0 on the row tells the
services there are no rows to read, so the pledge path costs what it did before add-ons.

Lock order: pledge row, reward rows, then add-on rows in id order, as in ``pledges.changes``.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Q
from django.utils.translation import gettext as _

from crowdfund_site.exceptions import Conflict, InvalidInput
from projects.models import AddOn, Campaign

from .models import Pledge, PledgeAddOn


@dataclass(frozen=True)
class AddOnLine:
    """One add-on as a pledge carries it: how many, at what price each."""

    addon: AddOn
    quantity: int
    unit_price: int

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


def addons_total(lines) -> int:
    return sum(line.total for line in lines)


def _requested_addons(*, campaign: Campaign, requested: dict) -> dict[int, tuple[AddOn, int]]:
    """Check the backer's ``{add-on id: quantity}`` and return ``{id: (add-on, quantity)}`` (one query).

    Refuses (InvalidInput, field ``addons``, nothing written) a quantity that is not a whole
    number from 0 to ADDONS_MAX_PER_BACKER, and an add-on that is not one of this campaign's.
    """
    limit = settings.ADDONS_MAX_PER_BACKER
    for addon_id, quantity in requested.items():
        if isinstance(addon_id, bool) or not isinstance(addon_id, int) or not 0 < addon_id < 2**63:
            raise InvalidInput(_("That add-on is not part of this campaign."), code="invalid_addon", field="addons")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise InvalidInput(
                _("An add-on's quantity is a whole number from 0 to %(max)s.") % {"max": limit},
                code="invalid_addon_quantity",
                field="addons",
            )
    addons = {addon.pk: addon for addon in AddOn.objects.filter(campaign_id=campaign.pk, pk__in=list(requested))}
    if set(requested) - set(addons):
        raise InvalidInput(_("That add-on is not part of this campaign."), code="invalid_addon", field="addons")
    for addon_id, quantity in requested.items():
        if quantity > limit:
            raise InvalidInput(
                _("You can add at most %(max)s of “%(addon)s” to your pledge.")
                % {"max": limit, "addon": addons[addon_id].title},
                code="addon_quantity_above_limit",
                field="addons",
            )
    return {addon_id: (addons[addon_id], quantity) for addon_id, quantity in sorted(requested.items())}


def _sold_out(addon: AddOn) -> Conflict:
    remaining = addon.remaining or 0
    if remaining:
        message = _("Only %(remaining)s of “%(addon)s” are left.") % {"remaining": remaining, "addon": addon.title}
    else:
        message = _("The “%(addon)s” add-on is sold out.") % {"addon": addon.title}
    return Conflict(message, code="addon_sold_out", field="addons")


def pledge_addons_for_new_pledge(*, campaign: Campaign, requested: dict | None) -> list[AddOnLine]:
    """Return the add-ons a new pledge asks for (quantity 0 left out), checked; no query when none asked.

    Raises InvalidInput as ``_requested_addons``, and Conflict ``addon_sold_out`` for an add-on
    known, as loaded, to have fewer units left than asked (``pledge_addons_claim`` stays the
    authoritative check for the last units).
    """
    if not requested:
        return []
    lines = [
        AddOnLine(addon=addon, quantity=quantity, unit_price=addon.price)
        for addon, quantity in _requested_addons(campaign=campaign, requested=requested).values()
        if quantity
    ]
    for line in lines:
        if line.addon.remaining is not None and line.addon.remaining < line.quantity:
            raise _sold_out(line.addon)
    return lines


def _claim(*, addon_id: int, units: int) -> bool:
    """Take ``units`` of an add-on; False if fewer are left. One conditional UPDATE under the row lock."""
    return (
        AddOn.objects.filter(pk=addon_id)
        .filter(Q(quantity_limit__isnull=True) | Q(claimed_count__lte=F("quantity_limit") - units))
        .update(claimed_count=F("claimed_count") + units)
        == 1
    )


def _free(*, addon_id: int, units: int) -> None:
    AddOn.objects.filter(pk=addon_id, claimed_count__gte=units).update(claimed_count=F("claimed_count") - units)


def pledge_addons_claim(*, units: dict[int, int]) -> None:
    """Claim ``{add-on id: units}`` in id order, or raise Conflict ``addon_sold_out`` (the caller rolls back)."""
    for addon_id, count in sorted(units.items()):
        if count > 0 and not _claim(addon_id=addon_id, units=count):
            raise _sold_out(AddOn.objects.get(pk=addon_id))


def pledge_addons_write(*, pledge: Pledge, lines: list[AddOnLine]) -> None:
    """Write a new pledge's add-on rows (its units claimed by the caller, in the same transaction)."""
    PledgeAddOn.objects.bulk_create(
        PledgeAddOn(pledge=pledge, addon=line.addon, quantity=line.quantity, unit_price=line.unit_price)
        for line in lines
    )


def _current(pledge_id: int) -> dict[int, tuple[int, int]]:
    """The pledge's add-ons now: ``{add-on id: (quantity, unit price)}``."""
    return {
        addon_id: (quantity, price)
        for addon_id, quantity, price in PledgeAddOn.objects.filter(pledge_id=pledge_id).values_list(
            "addon_id", "quantity", "unit_price"
        )
    }


def pledge_addons_free_all(*, pledge: Pledge) -> None:
    """Give back every unit of a pledge that failed or was cancelled; its rows stay, as its record."""
    if pledge.addons_amount:
        for addon_id, (quantity, _price) in sorted(_current(pledge.pk).items()):
            _free(addon_id=addon_id, units=quantity)


def pledge_addons_plan_change(*, pledge: Pledge, requested: dict | None) -> dict[str, list[int]] | None:
    """Return the add-ons a change sets (``PledgeChange.addons_to``), or None if it leaves them as they are.

    ``requested`` names the add-ons to set (quantity 0 removes one); those not named keep their
    quantity. An add-on the pledge carries keeps its price; a new one takes its price now. Raises
    InvalidInput as ``_requested_addons``; no query when nothing is asked.
    """
    if not requested:
        return None
    asked = _requested_addons(campaign=pledge.campaign, requested=requested)
    current = _current(pledge.pk) if pledge.addons_amount else {}
    after = dict(current)
    for addon_id, (addon, quantity) in asked.items():
        if quantity == 0:
            after.pop(addon_id, None)
        else:
            after[addon_id] = (quantity, current.get(addon_id, (0, addon.price))[1])
    if after == current:
        return None
    return {str(addon_id): [quantity, price] for addon_id, (quantity, price) in sorted(after.items())}


def addons_to_total(addons_to: dict[str, list[int]]) -> int:
    return sum(quantity * price for quantity, price in addons_to.values())


def _units_moved(*, pledge_id: int, addons_to: dict[str, list[int]]) -> dict[int, int]:
    """``{add-on id: units to + / from -}`` from the pledge's add-ons now to ``addons_to``."""
    current = _current(pledge_id)
    after = {int(addon_id): quantity for addon_id, (quantity, _price) in addons_to.items()}
    return {
        addon_id: after.get(addon_id, 0) - current.get(addon_id, (0, 0))[0]
        for addon_id in sorted(set(current) | set(after))
    }


def pledge_addons_claim_change(*, pledge_id: int, addons_to: dict[str, list[int]]) -> None:
    """Claim the units a change adds (the pledge row locked by the caller); Conflict ``addon_sold_out``."""
    pledge_addons_claim(units=_units_moved(pledge_id=pledge_id, addons_to=addons_to))


def pledge_addons_change_failed(*, pledge_id: int, addons_to: dict[str, list[int]]) -> None:
    """Give back the units a change claimed and never made (its pledge still carries what it did)."""
    for addon_id, units in _units_moved(pledge_id=pledge_id, addons_to=addons_to).items():
        if units > 0:
            _free(addon_id=addon_id, units=units)


def pledge_addons_apply_change(*, pledge: Pledge, addons_to: dict[str, list[int]]) -> int:
    """Make the locked pledge carry ``addons_to``: free the units it drops, rewrite its rows; return the new total.

    The units it adds were claimed when the change was reserved (``pledge_addons_claim_change``).
    """
    moved = _units_moved(pledge_id=pledge.pk, addons_to=addons_to)
    for addon_id, units in moved.items():
        if units < 0:
            _free(addon_id=addon_id, units=-units)
    PledgeAddOn.objects.filter(pledge_id=pledge.pk).exclude(addon_id__in=[int(i) for i in addons_to]).delete()
    for addon_id, (quantity, price) in addons_to.items():
        PledgeAddOn.objects.update_or_create(
            pledge_id=pledge.pk, addon_id=int(addon_id), defaults={"quantity": quantity, "unit_price": price}
        )
    return addons_to_total(addons_to)

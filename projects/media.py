"""Campaign pictures: the cover, the gallery and reward pictures (writes, and the reads they need).

Each upload is checked and turned into its sizes by ``crowdfund_site.images`` before any row is
locked (about half a second for a 12-megapixel photo, benchmarks/README.md), saved through the
default storage, and only then recorded on its row in a short transaction that checks again, under
the campaign's lock, that the initiator may still change it. A refusal at any point deletes the
files just saved, so nothing is left behind; a replaced picture's files are deleted once the new
one is committed. Pictures change while a campaign can be edited (draft, changes requested), like
the rest of what reviewers approve.
"""

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import gettext
from PIL import Image

from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, NotFound
from crowdfund_site.images import COVER, GALLERY, REWARD, Shape, image_delete, image_open_largest, image_store

from .models import (
    EDITABLE_STATUSES,
    GALLERY_MAX_IMAGES,
    IMAGE_ALT_MAX_LENGTH,
    Campaign,
    RewardTier,
)


def _clean_alt(alt: str) -> str:
    alt = " ".join((alt or "").split())
    if not alt:
        raise InvalidInput(
            gettext("Describe the picture in a few words for people who cannot see it."),
            code="alt_required",
            field="alt",
        )
    if len(alt) > IMAGE_ALT_MAX_LENGTH:
        raise InvalidInput(
            gettext("The description may be at most %(limit)s characters.") % {"limit": IMAGE_ALT_MAX_LENGTH},
            code="alt_too_long",
            field="alt",
        )
    return alt


def _ensure_may_change_pictures(campaign: Campaign, actor) -> None:
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed(gettext("Only the campaign's initiator can change its pictures."), code="not_initiator")
    if campaign.status not in EDITABLE_STATUSES:
        raise Conflict(
            gettext("Pictures can only be changed while the campaign is a draft or changes are requested."),
            code="not_editable",
        )


def _lock(campaign_id: int) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign_id)


def _store_and_record(*, campaign: Campaign, actor, upload, alt: str, shape: Shape, folder: str, record) -> object:
    """Check and store ``upload``, then ``record(locked_campaign, descriptor)`` in one transaction.

    ``record`` returns ``(result, replaced_descriptor_or_None)``. Raises what the checks raise;
    on any refusal the new files are deleted and no row changes.
    """
    _ensure_may_change_pictures(campaign, actor)  # before the work, so a stranger costs nothing
    alt = _clean_alt(alt)
    storage = default_storage
    descriptor = image_store(upload=upload, shape=shape, folder=folder, alt=alt, storage=storage)
    try:
        with transaction.atomic():
            locked = _lock(campaign.pk)
            _ensure_may_change_pictures(locked, actor)
            result, replaced = record(locked, descriptor)
    except BaseException:
        image_delete(descriptor=descriptor, storage=storage)
        raise
    if replaced:
        transaction.on_commit(lambda: image_delete(descriptor=replaced, storage=storage))
    return result


def campaign_cover_set(*, campaign: Campaign, actor, upload, alt: str) -> Campaign:
    """Make ``upload`` the campaign's cover (cropped to 16:9), replacing any earlier one.

    Only its initiator, while the campaign can be edited. Raises ImageRejected (not a JPEG, PNG
    or WebP; too large; too many pixels; damaged), InvalidInput (no ``alt``), NotAllowed or
    Conflict; nothing is stored then.
    """

    def record(locked: Campaign, descriptor: dict):
        replaced = locked.cover
        locked.cover = descriptor
        locked.save(update_fields=["cover", "updated_at"])
        return locked, replaced

    return _store_and_record(
        campaign=campaign,
        actor=actor,
        upload=upload,
        alt=alt,
        shape=COVER,
        folder=f"campaigns/{campaign.pk}/cover",
        record=record,
    )


def campaign_gallery_add(*, campaign: Campaign, actor, upload, alt: str) -> dict:
    """Add ``upload`` at the end of the campaign's gallery and return its descriptor.

    At most GALLERY_MAX_IMAGES pictures; raises as ``campaign_cover_set``, and Conflict when the
    gallery is full (checked before the picture is processed, and again under the lock).
    """

    def ensure_room(gallery: list) -> None:
        if len(gallery) >= GALLERY_MAX_IMAGES:
            raise Conflict(
                gettext("The gallery holds at most %(limit)s pictures; remove one first.")
                % {"limit": GALLERY_MAX_IMAGES},
                code="gallery_full",
            )

    def record(locked: Campaign, descriptor: dict):
        ensure_room(locked.gallery)
        locked.gallery = [*locked.gallery, descriptor]
        locked.save(update_fields=["gallery", "updated_at"])
        return descriptor, None

    ensure_room(campaign.gallery)
    return _store_and_record(
        campaign=campaign,
        actor=actor,
        upload=upload,
        alt=alt,
        shape=GALLERY,
        folder=f"campaigns/{campaign.pk}/gallery",
        record=record,
    )


def picture_token(descriptor: dict) -> str:
    """Return the name of a gallery picture within its campaign (the last part of its key)."""
    return descriptor["key"].rsplit("/", 1)[-1]


def campaign_gallery_picture(*, campaign: Campaign, token: str) -> dict | None:
    """Return the descriptor of the gallery picture named ``token``, or None (e.g. for the story)."""
    return next((item for item in campaign.gallery if picture_token(item) == token), None)


def campaign_gallery_remove(*, campaign: Campaign, actor, token: str) -> None:
    """Remove the gallery picture named ``token`` (its files are deleted once committed).

    Raises NotAllowed or Conflict as ``campaign_cover_set``, and NotFound for no such picture.
    """
    with transaction.atomic():
        locked = _lock(campaign.pk)
        _ensure_may_change_pictures(locked, actor)
        removed = campaign_gallery_picture(campaign=locked, token=token)
        if removed is None:
            raise NotFound(gettext("That picture is not in the gallery."), code="picture_not_found")
        locked.gallery = [item for item in locked.gallery if item is not removed]
        locked.save(update_fields=["gallery", "updated_at"])
        transaction.on_commit(lambda: image_delete(descriptor=removed, storage=default_storage))


def reward_image_set(*, reward: RewardTier, actor, upload, alt: str) -> RewardTier:
    """Give a reward tier its picture, replacing any earlier one; raises as ``campaign_cover_set``."""

    def record(locked: Campaign, descriptor: dict):
        tier = RewardTier.objects.select_for_update().get(pk=reward.pk, campaign=locked)
        replaced = tier.image
        tier.image = descriptor
        tier.save(update_fields=["image"])
        return tier, replaced

    return _store_and_record(
        campaign=reward.campaign,
        actor=actor,
        upload=upload,
        alt=alt,
        shape=REWARD,
        folder=f"campaigns/{reward.campaign_id}/rewards",
        record=record,
    )


def campaign_cover_open_largest(*, campaign: Campaign) -> Image.Image | None:
    """Return the cover's widest size opened with Pillow (e.g. to draw a share card), or None."""
    if not campaign.cover:
        return None
    return image_open_largest(descriptor=campaign.cover, storage=default_storage)

"""A pool's logo: checked and stored in sizes by ``crowdfund_site.images``, as campaign covers are."""

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.exceptions import NotAllowed
from crowdfund_site.images import LOGO, image_delete, image_store

from ..models import Pool
from ..selectors import user_may_act_for


def pool_logo_set(*, pool: Pool, actor, upload) -> Pool:
    """Make ``upload`` the pool's logo, replacing any earlier one (its files go once committed); return the pool.

    The sponsor or staff only, asked before the picture is looked at. The file is checked and
    turned into its sizes before the pool's row is locked; a refusal at any point deletes what was
    saved. Described by the pool's name; audited. Raises NotAllowed, ImageRejected (not a JPEG,
    PNG or WebP; too large; too many pixels; damaged); nothing is stored then.
    """
    if not user_may_act_for(user=actor, sponsor_id=pool.sponsor_id):
        raise NotAllowed(_("Only the sponsor or platform staff can change this pool's logo."), code="not_allowed")
    descriptor = image_store(
        upload=upload, shape=LOGO, folder=f"pools/{pool.pk}/logo", alt=pool.name, storage=default_storage
    )
    try:
        with transaction.atomic(durable=True):
            locked = Pool.objects.select_for_update().get(pk=pool.pk)
            replaced = locked.logo
            locked.logo = descriptor
            locked.save(update_fields=["logo"])
            audit_record(actor=actor, action="matching_pool_logo_set", obj=locked, details={"key": descriptor["key"]})
    except BaseException:
        image_delete(descriptor=descriptor, storage=default_storage)
        raise
    if replaced:
        image_delete(descriptor=replaced, storage=default_storage)
    pool.logo = descriptor
    return pool

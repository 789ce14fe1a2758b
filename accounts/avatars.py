"""A person's avatar: checked, cropped square and stored in sizes by ``crowdfund_site.images``."""

from django.core.files.storage import default_storage
from django.db import transaction

from crowdfund_site.images import AVATAR, image_delete, image_store

from .models import User


def user_avatar_set(*, user: User, upload) -> User:
    """Make ``upload`` the user's avatar, replacing any earlier one (its files go once committed).

    The picture is described by the person's name. Raises ImageRejected (not a JPEG, PNG or
    WebP; too large; too many pixels; damaged); nothing is stored then.
    """
    descriptor = image_store(
        upload=upload, shape=AVATAR, folder=f"avatars/{user.pk}", alt=user.public_name, storage=default_storage
    )
    try:
        with transaction.atomic():
            locked = User.objects.select_for_update().get(pk=user.pk)
            replaced = locked.avatar
            locked.avatar = descriptor
            locked.save(update_fields=["avatar"])
    except BaseException:
        image_delete(descriptor=descriptor, storage=default_storage)
        raise
    if replaced:
        transaction.on_commit(lambda: image_delete(descriptor=replaced, storage=default_storage))
    user.avatar = descriptor
    return user


def user_avatar_remove(*, user: User) -> User:
    """Remove the user's avatar, if any; its files go once committed. Idempotent."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        removed = locked.avatar
        if removed:
            locked.avatar = {}
            locked.save(update_fields=["avatar"])
    if removed:
        transaction.on_commit(lambda: image_delete(descriptor=removed, storage=default_storage))
    user.avatar = {}
    return user

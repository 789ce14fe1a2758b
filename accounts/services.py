from django.db import models, transaction

from .models import AuditEvent, User


@transaction.atomic
def user_create(*, username: str, email: str, password: str | None = None, display_name: str = "") -> User:
    """Create and return a user with a hashed password (unusable when none is given)."""
    user = User(username=username, email=email, display_name=display_name)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


def audit_record(
    *, actor, action: str, obj: models.Model, reason: str = "", outcome: str = "done", details: dict | None = None
) -> AuditEvent:
    """Record one staff action on ``obj``; refusals are recorded too (outcome "refused")."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        reason=reason,
        outcome=outcome,
        details=details or {},
    )


@transaction.atomic
def user_update_profile(*, user: User, display_name: str, bio: str, preferred_language: str) -> User:
    """Change the public profile of ``user`` (name, bio, language); return it. Raises ValidationError."""
    user.display_name = display_name.strip()
    user.bio = bio.strip()
    user.preferred_language = preferred_language
    user.full_clean(exclude=["password"])
    user.save(update_fields=["display_name", "bio", "preferred_language"])
    return user

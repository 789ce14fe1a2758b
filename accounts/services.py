import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.translation import gettext

from .models import BIO_MAX_LENGTH, AuditEvent, User


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str,
    password: str | None = None,
    display_name: str = "",
    preferred_language: str | None = None,
) -> User:
    """Create and return a user with a hashed password (unusable when none is given).

    ``preferred_language`` defaults to the site's language; an unknown one raises ValidationError.
    """
    language = preferred_language or settings.LANGUAGE_CODE
    _check_language(language)
    user = User(username=username, email=email, display_name=display_name, preferred_language=language)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


# The events recorded while ``audit_events_collect`` runs, so the admin can tell whether the
# service it called recorded its decision itself.
_collected_events: ContextVar[list[AuditEvent] | None] = ContextVar("collected_audit_events", default=None)


def audit_record(
    *, actor, action: str, obj: models.Model, reason: str = "", outcome: str = "done", details: dict | None = None
) -> AuditEvent:
    """Record one staff decision or money action on ``obj``; return the event.

    Services call it inside their own transaction for every staff decision and money action, so
    the row is written whatever the interface (admin, API, command) and goes away with an action
    that is rolled back. Refusals (outcome "refused") are recorded by the interface that shows
    them, after the service's transaction has been rolled back.
    """
    event = AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        reason=reason,
        outcome=outcome,
        details=details or {},
    )
    collected = _collected_events.get()
    if collected is not None:
        collected.append(event)
    return event


@contextlib.contextmanager
def audit_events_collect() -> Iterator[list[AuditEvent]]:
    """Yield a list that gathers every AuditEvent recorded in the block (in this thread)."""
    events: list[AuditEvent] = []
    token = _collected_events.set(events)
    try:
        yield events
    finally:
        _collected_events.reset(token)


@transaction.atomic
def user_update_profile(*, user: User, display_name: str, bio: str, preferred_language: str) -> User:
    """Change the public profile of ``user`` (name, bio, language); return it. Raises ValidationError."""
    _check_language(preferred_language)
    if len(bio.strip()) > BIO_MAX_LENGTH:
        raise ValidationError(
            {"bio": gettext("This may be at most %(limit)s characters.") % {"limit": f"{BIO_MAX_LENGTH:,}"}},
            code="too_long",
        )
    user.display_name = display_name.strip()
    user.bio = bio.strip()
    user.preferred_language = preferred_language
    user.full_clean(exclude=["password"])
    user.save(update_fields=["display_name", "bio", "preferred_language"])
    return user


def _check_language(language: str) -> None:
    # The model field takes any text; only the site's languages make sense in it.
    if language not in dict(settings.LANGUAGES):
        raise ValidationError(gettext("Choose one of the languages the site offers."), code="invalid_language")


@transaction.atomic
def user_set_preferred_language(*, user: User, language: str) -> User:
    """Store ``language`` as the language ``user`` reads the site and e-mails in; return the user.

    Idempotent: saving the language already stored writes nothing. Raises ValidationError for a
    language the site does not offer.
    """
    _check_language(language)
    if user.preferred_language != language:
        user.preferred_language = language
        user.save(update_fields=["preferred_language"])
    return user

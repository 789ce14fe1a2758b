import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError
from django.core.signing import BadSignature, SignatureExpired, TimestampSigner
from django.core.validators import validate_email
from django.db import models, transaction
from django.urls import reverse
from django.utils.translation import gettext
from rest_framework.authtoken.models import Token

from crowdfund_site.exceptions import ApplicationError, Conflict, InvalidInput
from crowdfund_site.ratelimit import limit_key, minutes_left, window_hit

from .emails import email_to
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
def user_note_delivery_record(*, user_id: int) -> None:
    """Mark ``user`` as having a delivery record to show (``User.has_delivery_record``); idempotent.

    Called by the services that give an initiator something their record counts: a milestone
    plan, a shipment, a tier declared not delivered. One UPDATE, none once set.
    """
    User.objects.filter(pk=user_id, has_delivery_record=False).update(has_delivery_record=True)


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


# --- E-mail verification, e-mail and password changes, account deletion -----------------------

EMAIL_VERIFICATION_SALT = "accounts.email-verification"


class VerificationEmailsBlocked(ApplicationError):
    """Too many verification e-mails asked for one account in one window."""

    http_status = 429
    default_code = "too_many_verification_emails"


def email_verification_token(*, user: User) -> str:
    """Return a signed link token for ``user``'s current address, valid EMAIL_VERIFICATION_MAX_AGE_SECONDS.

    The token names the address it was sent to: once the e-mail changes, older links stop working.
    """
    return TimestampSigner(salt=EMAIL_VERIFICATION_SALT).sign_object({"user": user.pk, "email": user.email})


def email_verification_send(*, user: User) -> bool:
    """E-mail ``user`` a link that verifies their address; return False if they have none or it is verified.

    Raises VerificationEmailsBlocked past EMAIL_VERIFICATIONS_PER_USER in
    EMAIL_VERIFICATION_WINDOW_SECONDS (counted atomically, crowdfund_site.ratelimit), so nobody can
    have a mailbox flooded through the resend button.
    """
    if not user.email or user.email_verified:
        return False
    (count,) = window_hit([(limit_key("verify-email", str(user.pk)), settings.EMAIL_VERIFICATION_WINDOW_SECONDS)])
    if count.count > settings.EMAIL_VERIFICATIONS_PER_USER:
        raise VerificationEmailsBlocked(
            gettext("Too many verification e-mails. Wait %(minutes)s minutes and try again.")
            % {"minutes": minutes_left(count.retry_after)}
        )
    path = reverse("accounts:email_verify", kwargs={"token": email_verification_token(user=user)})
    days = max(settings.EMAIL_VERIFICATION_MAX_AGE_SECONDS // 86_400, 1)
    message = email_to(user=user, template="email_verification", context={"path": path, "days": days})
    message.send()
    return True


@transaction.atomic
def user_verify_email(*, token: str) -> User:
    """Mark the address the link in ``token`` was sent to as verified; return its user.

    Idempotent: a second click on the same link changes nothing. Raises InvalidInput with code
    ``link_expired`` or ``link_invalid`` (tampered, for another address than the current one, or
    for a deleted account).
    """
    signer = TimestampSigner(salt=EMAIL_VERIFICATION_SALT)
    try:
        data = signer.unsign_object(token, max_age=settings.EMAIL_VERIFICATION_MAX_AGE_SECONDS)
    except SignatureExpired:
        raise InvalidInput(
            gettext("This link has expired. Log in and ask for a new one from your profile."), code="link_expired"
        ) from None
    except (BadSignature, ValueError, TypeError):
        raise InvalidInput(gettext("This link is not valid."), code="link_invalid") from None
    user = (
        User.objects.select_for_update().filter(pk=data.get("user"), is_active=True).first()
        if isinstance(data, dict)
        else None
    )
    if user is None or not user.email or user.email != data.get("email"):
        raise InvalidInput(gettext("This link is not valid."), code="link_invalid")
    if not user.email_verified:
        user.email_verified = True
        user.save(update_fields=["email_verified"])
        audit_record(actor=user, action="user_verify_email", obj=user, details={"email": user.email})
    return user


def _check_password(*, user: User, password: str, request) -> None:
    """Refuse with InvalidInput unless ``password`` is ``user``'s, through the log-in policy.

    ``authenticate`` is the one path that checks passwords (accounts.backends): guesses here count
    against the same limits as the log-in form, and past them raise LoginBlocked.
    """
    if authenticate(request, username=user.get_username(), password=password or "") is None:
        raise InvalidInput(gettext("That is not your current password."), code="wrong_password", field="password")


def user_change_email(*, user: User, email: str, password: str, request=None) -> User:
    """Change ``user``'s e-mail after checking their password; the new address must be verified again.

    Sends the verification link to the new address after commit. Raises InvalidInput (wrong
    password, bad or taken address) or LoginBlocked; on refusal nothing changes.
    """
    _check_password(user=user, password=password, request=request)
    email = User.objects.normalize_email((email or "").strip())
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(gettext("Enter a valid e-mail address."), code="invalid_email", field="email") from None
    if email.lower() == user.email.lower():
        raise InvalidInput(gettext("That is already your e-mail address."), code="same_email", field="email")
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
            raise InvalidInput(
                gettext("An account with this e-mail address already exists."), code="email_taken", field="email"
            )
        previous = user.email
        user.email = email
        user.email_verified = False
        user.save(update_fields=["email", "email_verified"])
        audit_record(actor=user, action="user_change_email", obj=user, details={"from": previous, "to": email})
    # The address is changed either way; past the limit, the profile's resend button says when.
    with contextlib.suppress(VerificationEmailsBlocked):
        email_verification_send(user=user)
    return user


def user_change_password(*, user: User, old_password: str, new_password: str, request=None) -> User:
    """Set ``user``'s password to ``new_password`` after checking the current one (log-in policy).

    Raises InvalidInput (wrong current password, or one the password validators refuse) or
    LoginBlocked. The caller keeps the session logged in (``update_session_auth_hash``).
    """
    _check_password(user=user, password=old_password, request=request)
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), code="weak_password", field="new_password1") from None
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        audit_record(actor=user, action="user_change_password", obj=user)
    return user


@transaction.atomic
def user_delete(*, user: User, password: str, request=None) -> User:
    """Anonymise ``user`` for good and close the account; the ledger and their pledges stay as they are.

    Name, username, e-mail, bio and password are wiped and the account can no longer log in; the
    row stays, so pledges, campaigns, ledger entries and audit events keep pointing at it (as
    "Deleted account"). Refused with Conflict while they run a campaign that has not finished
    (its backers' money depends on them). Audited. Raises InvalidInput (wrong password) or LoginBlocked.
    """
    _check_password(user=user, password=password, request=request)
    unfinished = user.campaigns.exclude(status__in=_FINISHED_CAMPAIGN_STATUSES).exclude(status="draft")
    if unfinished.exists():
        raise Conflict(
            gettext("You run a campaign that has not finished. Cancel it or wait until it has settled."),
            code="campaign_running",
        )
    user = User.objects.select_for_update().get(pk=user.pk)
    audit_record(actor=user, action="user_delete", obj=user, details={"username": user.username})
    user.username = f"deleted-{user.pk}"
    user.email = ""
    user.email_verified = False
    user.first_name = user.last_name = user.display_name = user.bio = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()
    Token.objects.filter(user=user).delete()
    return user


# Campaign statuses (projects.models.CampaignStatus) after which nobody's money depends on the
# initiator: spelled out because accounts sits below projects.
_FINISHED_CAMPAIGN_STATUSES = ("succeeded", "failed", "cancelled", "rejected")

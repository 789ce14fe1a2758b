"""Plain-text e-mail to people, each in their own language, each sent once.

Notifications compose messages with ``email_to`` and send them with ``emails_send_once``, which
sends one message per recipient over one connection and records each in ``SentEmail``,
so a task that runs twice (a retry, or redelivery after a worker died: tasks use ``acks_late``)
does not send the same e-mail twice. Templates live in ``templates/emails/<name>_subject.txt``
and ``<name>_body.txt``.
"""

from collections.abc import Iterable, Iterator

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation

from .models import SentEmail

SEND_CHUNK = 200


def email_to(*, user, template: str, context: dict) -> EmailMessage | None:
    """Return the message ``template`` renders for ``user``, in their language; None without an address."""
    if not user.email:
        return None
    language = user.preferred_language if user.preferred_language in dict(settings.LANGUAGES) else "en"
    context = {**context, "recipient": user, "site_url": settings.SITE_URL.rstrip("/")}
    with translation.override(language):
        subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
        body = render_to_string(f"emails/{template}_body.txt", context)
    return EmailMessage(subject=subject, body=body, to=[user.email])


def emails_send_once(*, template: str, object_id: int, recipients: Iterable[tuple[object, dict]]) -> int:
    """Send ``template`` to each (user, context) not yet sent it about ``object_id``; return how many went.

    The template name is the e-mail's kind: (template, object_id, user) is sent at most once,
    however often this runs, even twice at the same time. Users without an address are skipped.

    Trade-off, chosen on purpose: each recipient is recorded *before* their message is handed to
    the mail server (at-most-once), because a duplicate receipt or refund notice worries people
    more than a rare missing one. A send that fails with an error (the mail server is down) takes
    back the records of that message and of the rest of its chunk before re-raising, so Celery's
    retry sends them: only a worker killed between the record and the hand-over loses an e-mail.
    Recording after sending would be at-least-once instead: a crash in between sends it twice.
    """
    sent = 0
    with get_connection() as connection:
        for chunk in _chunks(recipients, SEND_CHUNK):
            by_user = {user.pk: (user, context) for user, context in chunk if user.email}
            fresh = _claim(kind=template, object_id=object_id, user_ids=list(by_user))
            claimed = [pk for pk in by_user if pk in fresh]
            for index, pk in enumerate(claimed):
                user, context = by_user[pk]
                try:
                    message = email_to(user=user, template=template, context=context)
                    sent += connection.send_messages([message]) or 0
                except Exception:
                    _release(kind=template, object_id=object_id, user_ids=claimed[index:])
                    raise
    return sent


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _claim(*, kind: str, object_id: int, user_ids: list[int]) -> set[int]:
    """Record (kind, object_id, user) for each user not recorded yet; return the users recorded now."""
    done = set(
        SentEmail.objects.filter(kind=kind, object_id=object_id, recipient_id__in=user_ids).values_list(
            "recipient_id", flat=True
        )
    )
    fresh = [pk for pk in user_ids if pk not in done]
    try:
        with transaction.atomic():
            SentEmail.objects.bulk_create(SentEmail(kind=kind, object_id=object_id, recipient_id=pk) for pk in fresh)
        return set(fresh)
    except IntegrityError:
        pass
    # Another run of the same task is sending right now: take only what it has not taken.
    claimed = set()
    for pk in fresh:
        try:
            with transaction.atomic():
                SentEmail.objects.create(kind=kind, object_id=object_id, recipient_id=pk)
        except IntegrityError:
            continue
        claimed.add(pk)
    return claimed


def _release(*, kind: str, object_id: int, user_ids: list[int]) -> None:
    SentEmail.objects.filter(kind=kind, object_id=object_id, recipient_id__in=user_ids).delete()

"""Plain-text e-mail to people, each in their own language.

Services and tasks compose messages with ``email_to``; ``emails_send`` sends many over one
connection. Templates live in ``templates/emails/<name>_subject.txt`` and ``<name>_body.txt``.
"""

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.template.loader import render_to_string
from django.utils import translation

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


def emails_send(messages: Iterable[EmailMessage | None]) -> int:
    """Send ``messages`` (None entries are skipped) over one connection, in chunks; return how many."""
    sent, chunk = 0, []
    with get_connection() as connection:
        for message in messages:
            if message is None:
                continue
            chunk.append(message)
            if len(chunk) >= SEND_CHUNK:
                sent += connection.send_messages(chunk) or 0
                chunk = []
        if chunk:
            sent += connection.send_messages(chunk) or 0
    return sent

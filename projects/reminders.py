"""Reminders when a succeeded campaign goes quiet: the initiator after 21 days, the backers after 28.

A silence is counted from the campaign's last news (``campaigns_succeeded_with_last_news``). Each
reminder is a ``SilenceReminder`` row, one per kind and silence (a unique constraint), so it is
sent once however often the beat task runs and whichever worker runs it:

1. ``silence_reminders_create_due`` adds the row of every silence that has lasted long enough;
2. ``silence_reminders_send_due`` claims due rows with ``select_for_update(skip_locked=True)``
   (SQLite, which has one writer at a time, ignores the locking clause), marks them being sent
   and commits, then sends each outside any transaction and marks it sent. Each recipient's
   e-mail is recorded once (``emails_send_once``, keyed by the row), so a row claimed again
   after a worker died mid-way sends only what is missing.

A reminder whose campaign has had news since it fell due is skipped, not sent.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .models import SilenceReminder, SilenceReminderKind, SilenceReminderStatus
from .notifications import silence_reminder_email_send
from .selectors import campaigns_silent_since, campaigns_succeeded_with_last_news

# A row claimed this long ago and not marked sent belongs to a worker that died: claim it again.
CLAIM_STALE_AFTER = timedelta(minutes=15)


def _silences() -> dict[str, timedelta]:
    return {
        SilenceReminderKind.INITIATOR: timedelta(days=settings.SILENCE_REMIND_INITIATOR_DAYS),
        SilenceReminderKind.BACKERS: timedelta(days=settings.SILENCE_REMIND_BACKERS_DAYS),
    }


def silence_reminders_create_due(*, now: datetime | None = None) -> int:
    """Create the reminder of every silence that reached its length; return how many are new.

    Idempotent: a silence already reminded of (or being reminded of by another run) is left out,
    and the unique constraint drops a racing duplicate.
    """
    now = now or timezone.now()
    created = 0
    for kind, length in _silences().items():
        reminded = SilenceReminder.objects.filter(
            campaign_id=OuterRef("pk"), kind=kind, silent_since=OuterRef("last_news_at")
        )
        silent = campaigns_silent_since(before=now - length).exclude(Exists(reminded))
        rows = [
            SilenceReminder(campaign_id=pk, kind=kind, silent_since=since, due_at=since + length)
            for pk, since in silent.values_list("pk", "last_news_at").iterator(chunk_size=1_000)
        ]
        created += len(SilenceReminder.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1_000))
    return created


def silence_reminders_send_due(*, now: datetime | None = None, batch_size: int = 50) -> int:
    """Send every due reminder once; return how many e-mails went.

    Two workers running this at once claim different rows. Raises what the mail server raises;
    the rows claimed then are claimed again after CLAIM_STALE_AFTER.
    """
    now = now or timezone.now()
    sent = 0
    while claimed := _claim_due(now=now, batch_size=batch_size):
        for reminder in claimed:
            sent += _reminder_send(reminder)
    return sent


def _claim_due(*, now: datetime, batch_size: int) -> list[SilenceReminder]:
    with transaction.atomic(durable=True):
        due = list(
            SilenceReminder.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=SilenceReminderStatus.PENDING, due_at__lte=now)
                | Q(status=SilenceReminderStatus.SENDING, claimed_at__lte=now - CLAIM_STALE_AFTER)
            )
            .order_by("due_at", "id")[:batch_size]
        )
        claimed_at = timezone.now()
        SilenceReminder.objects.filter(pk__in=[r.pk for r in due]).update(
            status=SilenceReminderStatus.SENDING, claimed_at=claimed_at
        )
    for reminder in due:
        reminder.status, reminder.claimed_at = SilenceReminderStatus.SENDING, claimed_at
    return due


def _reminder_send(reminder: SilenceReminder) -> int:
    campaign = campaigns_succeeded_with_last_news().select_related("initiator").filter(pk=reminder.campaign_id).first()
    if campaign is None or campaign.last_news_at > reminder.silent_since:
        status, sent = SilenceReminderStatus.SKIPPED, 0
    else:
        status, sent = SilenceReminderStatus.SENT, silence_reminder_email_send(reminder=reminder, campaign=campaign)
    # Only the claim that is ours: a row claimed again meanwhile is the other worker's to finish.
    SilenceReminder.objects.filter(pk=reminder.pk, claimed_at=reminder.claimed_at).update(
        status=status, sent_at=timezone.now(), recipients=sent
    )
    return sent

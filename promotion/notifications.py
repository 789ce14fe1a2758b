"""Sending the notices that are due, each exactly once, by any number of workers.

Each notice is claimed in its own transaction with ``SELECT ... FOR UPDATE SKIP LOCKED``
(PostgreSQL), handed to the mail server, and marked done before that transaction commits:

- two workers never take the same row (the second skips the locked one);
- a worker killed before the commit leaves the row unsent and unlocked (PostgreSQL ends the
  dead connection's transaction), so the next run sends it;
- the one window left is between the mail server accepting the message and the COMMIT a
  moment later: a kill exactly there sends that one e-mail twice. Holding the lock while
  sending keeps that window to a single message, never a batch.

SQLite has no row locks: its transactions are IMMEDIATE (settings), so a second worker's
claim waits for the first one's commit and then sees the row done.
"""

from django.core.mail import get_connection
from django.db import connection, transaction
from django.utils import timezone

from accounts.emails import email_to
from projects.models import CampaignStatus
from projects.selectors import BACKER_PLEDGE_STATUSES

from .models import Notice, NoticeKind, NoticeOutcome

TEMPLATES = {NoticeKind.LAUNCH: "promotion_launch", NoticeKind.ENDING: "promotion_ending"}


def _claim_next(now):
    notices = Notice.objects.select_related("user", "campaign", "campaign__initiator").filter(
        done_at__isnull=True, due_at__lte=now
    )
    if connection.features.has_select_for_update_skip_locked:
        notices = notices.select_for_update(skip_locked=True, of=("self",))
    return notices.order_by("due_at", "id").first()


def _still_wanted(notice: Notice) -> bool:
    campaign = notice.campaign
    if notice.kind == NoticeKind.LAUNCH:
        return campaign.status == CampaignStatus.LIVE
    backed = campaign.pledges.filter(backer_id=notice.user_id, status__in=BACKER_PLEDGE_STATUSES).exists()
    return campaign.is_open_for_pledges and not backed


def notice_send_next(*, mail_connection, now=None) -> Notice | None:
    """Claim the next due notice, send (or skip) it and mark it done; return it, or None if none is due."""
    with transaction.atomic():
        notice = _claim_next(now or timezone.now())
        if notice is None:
            return None
        outcome = NoticeOutcome.SKIPPED
        if _still_wanted(notice):
            message = email_to(user=notice.user, template=TEMPLATES[notice.kind], context={"campaign": notice.campaign})
            if message is not None:
                mail_connection.send_messages([message])
                outcome = NoticeOutcome.SENT
        notice.done_at = timezone.now()
        notice.outcome = outcome
        notice.save(update_fields=["done_at", "outcome"])
        return notice


def notices_send_due(*, limit: int = 500, now=None) -> int:
    """Send up to ``limit`` due notices over one mail connection; return how many were handled."""
    handled = 0
    with get_connection() as mail_connection:
        while handled < limit and notice_send_next(mail_connection=mail_connection, now=now) is not None:
            handled += 1
    return handled

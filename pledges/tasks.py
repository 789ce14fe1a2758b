"""Celery tasks for pledges: thin wrappers that send e-mails (and a held pledge's follow-ups) by id."""

from celery import shared_task

from . import followups, notifications

EMAIL_TASK_OPTIONS = {"acks_late": True, "autoretry_for": (OSError,), "retry_backoff": True, "max_retries": 5}


@shared_task(**EMAIL_TASK_OPTIONS)
def pledge_held_follow_up(pledge_id: int, ip: str | None = None) -> int:
    """The one message a held pledge sends: its receipt and the other apps' follow-ups (fraud checks)."""
    return followups.pledge_follow_ups_run(pledge_id=pledge_id, ip=ip)


@shared_task(**EMAIL_TASK_OPTIONS)
def pledge_changed_follow_up(change_id: int, pledge_id: int, ip: str | None = None) -> int:
    """The one message a change of a pledge sends: its e-mail and the other apps' follow-ups (fraud checks)."""
    return followups.pledge_change_follow_ups_run(change_id=change_id, pledge_id=pledge_id, ip=ip)


# Still consumed: receipts enqueued by the code before ``pledge_held_follow_up`` may be in the broker.
@shared_task(**EMAIL_TASK_OPTIONS)
def send_pledge_receipt(pledge_id: int) -> int:
    return notifications.pledge_receipt_send(pledge_id=pledge_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_pledge_refunded(pledge_id: int) -> int:
    return notifications.pledge_refund_email_send(pledge_id=pledge_id)


# Still consumed: change e-mails enqueued by the code before ``pledge_changed_follow_up`` may be in the broker.
@shared_task(**EMAIL_TASK_OPTIONS)
def send_pledge_changed(change_id: int) -> int:
    return notifications.pledge_change_email_send(change_id=change_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_campaign_outcome_emails(campaign_id: int) -> int:
    return notifications.campaign_outcome_emails_send(campaign_id=campaign_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_installments_ended(pledge_id: int) -> int:
    return notifications.installments_ended_email_send(pledge_id=pledge_id)

"""Celery tasks for pledges: thin wrappers that send e-mails by id."""

from celery import shared_task

from . import notifications

EMAIL_TASK_OPTIONS = {"acks_late": True, "autoretry_for": (OSError,), "retry_backoff": True, "max_retries": 5}


@shared_task(**EMAIL_TASK_OPTIONS)
def send_pledge_receipt(pledge_id: int) -> int:
    return notifications.pledge_receipt_send(pledge_id=pledge_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_pledge_refunded(pledge_id: int) -> int:
    return notifications.pledge_refund_email_send(pledge_id=pledge_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_pledge_changed(change_id: int) -> int:
    return notifications.pledge_change_email_send(change_id=change_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_campaign_outcome_emails(campaign_id: int) -> int:
    return notifications.campaign_outcome_emails_send(campaign_id=campaign_id)

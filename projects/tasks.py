"""Celery tasks for campaigns: thin wrappers that send e-mails by id."""

from celery import shared_task

from . import notifications

EMAIL_TASK_OPTIONS = {"acks_late": True, "autoretry_for": (OSError,), "retry_backoff": True, "max_retries": 5}


@shared_task(**EMAIL_TASK_OPTIONS)
def send_campaign_review_email(campaign_id: int, decision: str) -> int:
    return notifications.campaign_review_email_send(campaign_id=campaign_id, decision=decision)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_campaign_update_email(update_id: int) -> int:
    return notifications.campaign_update_email_send(update_id=update_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_reward_change_email(change_id: int) -> int:
    return notifications.reward_change_email_send(change_id=change_id)

"""Celery tasks for campaigns: thin wrappers that send e-mails by id, and the silence reminders beat sends."""

from celery import shared_task

from . import notifications, reminders

EMAIL_TASK_OPTIONS = {"acks_late": True, "autoretry_for": (OSError,), "retry_backoff": True, "max_retries": 5}


@shared_task(**EMAIL_TASK_OPTIONS)
def send_campaign_review_email(campaign_id: int, decision: str) -> int:
    return notifications.campaign_review_email_send(campaign_id=campaign_id, decision=decision)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_campaign_update_email(update_id: int) -> int:
    return notifications.campaign_update_email_send(update_id=update_id)


@shared_task(**EMAIL_TASK_OPTIONS)
def send_silence_reminders() -> int:
    """Create the reminders that fell due and send them, each once (two workers at once included)."""
    reminders.silence_reminders_create_due()
    return reminders.silence_reminders_send_due()


@shared_task(**EMAIL_TASK_OPTIONS)
def send_milestone_emails(event: str, milestone_id: int) -> int:
    from .milestones.notifications import milestone_emails_send

    return milestone_emails_send(event=event, milestone_id=milestone_id)


@shared_task(acks_late=True)
def close_due_milestone_votes() -> list[int]:
    """Close the backers' votes whose seven days are over (beat sends this every few minutes)."""
    from .milestones.services import milestone_votes_close_due

    return milestone_votes_close_due()


@shared_task(**EMAIL_TASK_OPTIONS)
def send_reward_change_email(change_id: int) -> int:
    return notifications.reward_change_email_send(change_id=change_id)


@shared_task(acks_late=True)
def unlock_stretch_goals() -> int:
    """Beat's task (every minute): mark the goals the totals reached, then e-mail each one's backers once."""
    from .stretch_goals import stretch_goal_emails_send_due, stretch_goals_unlock_due

    stretch_goals_unlock_due()
    return stretch_goal_emails_send_due()


@shared_task(**EMAIL_TASK_OPTIONS)
def send_deadline_extension_email(extension_id: int) -> int:
    return notifications.deadline_extension_email_send(extension_id=extension_id)

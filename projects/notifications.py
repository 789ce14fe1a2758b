"""E-mails about campaigns: review decisions to the initiator, updates to the backers.

Called by the thin tasks in ``projects.tasks``; each loads what it needs by id, so a task that
runs late sends what is true then. Each e-mail goes to each person once per review decision or
update, however often its task runs (``emails_send_once``).
"""

from django.contrib.auth import get_user_model

from accounts.emails import emails_send_once

from .models import (
    Campaign,
    CampaignDeadlineExtension,
    CampaignStatus,
    CampaignUpdate,
    RewardTierChange,
    SilenceReminder,
    SilenceReminderKind,
)
from .selectors import BACKER_PLEDGE_STATUSES

REVIEW_TEMPLATES = {
    CampaignStatus.APPROVED: "campaign_approved",
    CampaignStatus.CHANGES_REQUESTED: "campaign_changes_requested",
    CampaignStatus.REJECTED: "campaign_rejected",
}


def campaign_backers(*, campaign_id: int):
    """Return each backer (held or released pledge) of the campaign once, for e-mailing (one query)."""
    return (
        get_user_model()
        .objects.filter(pledges__campaign_id=campaign_id, pledges__status__in=BACKER_PLEDGE_STATUSES)
        .exclude(email="")
        .distinct()
        .order_by("pk")
        .only("pk", "email", "username", "display_name", "preferred_language")
    )


def campaign_review_email_send(*, campaign_id: int, decision: str) -> int:
    """E-mail the initiator the reviewer's decision (approved, changes requested, rejected)."""
    template = REVIEW_TEMPLATES.get(decision)
    if template is None:
        return 0
    campaign = Campaign.objects.select_related("initiator").get(pk=campaign_id)
    # Keyed by the decision's own record: a campaign can be sent back for changes more than once.
    decided = campaign.status_changes.filter(to_status=decision).order_by("-created_at", "-id").first()
    if decided is None:
        return 0
    return emails_send_once(
        template=template, object_id=decided.pk, recipients=[(campaign.initiator, {"campaign": campaign})]
    )


def campaign_update_email_send(*, update_id: int) -> int:
    """E-mail a new update to every backer of its campaign."""
    update = CampaignUpdate.objects.select_related("campaign").get(pk=update_id)
    context = {"campaign": update.campaign, "update": update}
    return emails_send_once(
        template="campaign_update",
        object_id=update.pk,
        recipients=(
            (backer, context) for backer in campaign_backers(campaign_id=update.campaign_id).iterator(chunk_size=1_000)
        ),
    )


SILENCE_TEMPLATES = {
    SilenceReminderKind.INITIATOR: "campaign_silent_initiator",
    SilenceReminderKind.BACKERS: "campaign_silent_backers",
}


def silence_reminder_email_send(*, reminder: SilenceReminder, campaign: Campaign) -> int:
    """E-mail a silence reminder: the initiator to post an update, or every backer that there is no news."""
    context = {"campaign": campaign, "silent_since": reminder.silent_since}
    if reminder.kind == SilenceReminderKind.INITIATOR:
        recipients = iter([(campaign.initiator, context)])
    else:
        recipients = ((b, context) for b in campaign_backers(campaign_id=campaign.pk).iterator(chunk_size=1_000))
    return emails_send_once(template=SILENCE_TEMPLATES[reminder.kind], object_id=reminder.pk, recipients=recipients)


def reward_change_email_send(*, change_id: int) -> int:
    """E-mail the backers of a reward tier what changed about it (description, delivery date)."""
    change = RewardTierChange.objects.select_related("reward__campaign").get(pk=change_id)
    reward = change.reward
    backers = (
        get_user_model()
        .objects.filter(pledges__reward_id=reward.pk, pledges__status__in=BACKER_PLEDGE_STATUSES)
        .exclude(email="")
        .distinct()
        .order_by("pk")
        .only("pk", "email", "username", "display_name", "preferred_language")
    )
    context = {
        "campaign": reward.campaign,
        "reward": reward,
        "description_changed": "description" in change.changes,
        "delivery_changed": "estimated_delivery" in change.changes,
    }
    return emails_send_once(
        template="reward_changed",
        object_id=change.pk,
        recipients=((backer, context) for backer in backers.iterator(chunk_size=1_000)),
    )


def deadline_extension_email_send(*, extension_id: int) -> int:
    """E-mail every backer of the campaign that its deadline moved, and to when (each once)."""
    extension = CampaignDeadlineExtension.objects.select_related("campaign").get(pk=extension_id)
    context = {"campaign": extension.campaign, "extension": extension}
    return emails_send_once(
        template="campaign_deadline_extended",
        object_id=extension.pk,
        recipients=(
            (backer, context)
            for backer in campaign_backers(campaign_id=extension.campaign_id).iterator(chunk_size=1_000)
        ),
    )

"""E-mails about milestones, for each step a backer or initiator must act on.

- vote opened: every backer is asked to vote;
- vote closed: the initiator hears the result (waiting for Finance, or rejected and why);
- rejected by Finance, or overdue: the initiator hears what to do (resubmit, ask for an extension).

Each is keyed by the milestone's recorded change that caused it, so it goes to each person once.
"""

from accounts.emails import emails_send_once
from projects.notifications import campaign_backers

from .models import Milestone, MilestoneStatus

_INITIATOR_TEMPLATES = {
    MilestoneStatus.APPROVED: "milestone_approved_by_backers",
    MilestoneStatus.REJECTED: "milestone_rejected",
    MilestoneStatus.OVERDUE: "milestone_overdue",
}


def milestone_emails_send(*, event: str, milestone_id: int) -> int:
    """Send the e-mails of ``event`` ("vote_opened", "vote_closed", "rejected", "overdue"); return how many went."""
    milestone = Milestone.objects.select_related("campaign", "campaign__initiator").get(pk=milestone_id)
    change = milestone.status_changes.order_by("-created_at", "-id").first()
    if change is None:
        return 0
    context = {"campaign": milestone.campaign, "milestone": milestone}
    if event == "vote_opened":
        if change.to_status != MilestoneStatus.VOTING:
            return 0
        backers = campaign_backers(campaign_id=milestone.campaign_id).iterator(chunk_size=1_000)
        return emails_send_once(
            template="milestone_vote_opened", object_id=change.pk, recipients=((b, context) for b in backers)
        )
    template = _INITIATOR_TEMPLATES.get(change.to_status)
    if template is None:
        return 0
    return emails_send_once(
        template=template, object_id=change.pk, recipients=[(milestone.campaign.initiator, context)]
    )

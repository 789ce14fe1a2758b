"""The milestones section of a campaign page, as an inclusion tag so the page's view stays as it is."""

from django import template

from projects.milestones.models import MilestoneStatus, MilestoneVote
from projects.milestones.selectors import backer_vote_weight, milestones_of
from projects.models import EDITABLE_STATUSES

register = template.Library()


@register.inclusion_tag("projects/_milestones.html", takes_context=True)
def campaign_milestones(context, campaign):
    """Render the plan and, for whoever may act, the proof, vote, extension and abandon forms."""
    # The flag on the row (kept by milestones_plan_replace) spares the query on a campaign without a plan.
    milestones = list(milestones_of(campaign=campaign)) if campaign.has_milestone_plan else []
    user = context.get("user")
    signed_in = user is not None and user.is_authenticated
    is_initiator = signed_in and user.pk == campaign.initiator_id
    weight = backer_vote_weight(campaign_id=campaign.pk, backer_id=user.pk) if signed_in and milestones else 0
    voted = set()
    if weight:
        voted = {
            (milestone_id, vote_round)
            for milestone_id, vote_round in MilestoneVote.objects.filter(
                milestone__campaign=campaign, backer_id=user.pk
            ).values_list("milestone_id", "vote_round")
        }
    next_open = next((m for m in milestones if m.status != MilestoneStatus.RELEASED), None)
    rows = [
        {
            "milestone": m,
            "can_vote": weight > 0 and m.status == MilestoneStatus.VOTING and (m.pk, m.vote_round) not in voted,
            "has_voted": (m.pk, m.vote_round) in voted,
            "can_submit": is_initiator
            and m is next_open
            and m.amount is not None
            and m.status in (MilestoneStatus.PLANNED, MilestoneStatus.REJECTED),
            "can_extend": is_initiator
            and m.amount is not None
            and m.extended_to is None
            and m.status in (MilestoneStatus.PLANNED, MilestoneStatus.REJECTED, MilestoneStatus.OVERDUE),
        }
        for m in milestones
    ]
    ongoing = any(m.status not in (MilestoneStatus.RELEASED, MilestoneStatus.FAILED) for m in milestones)
    return {
        "campaign": campaign,
        "rows": rows,
        "weight": weight,
        "can_plan": is_initiator and campaign.status in EDITABLE_STATUSES,
        "can_abandon": is_initiator and campaign.status == "succeeded" and ongoing and milestones[0].amount is not None,
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }

"""The campaign page's "Late pledges open" section: the offer's rewards at their late prices."""

from django import template

from projects.models import CampaignStatus

from ..late_selectors import late_offer_taking_pledges

register = template.Library()


@register.inclusion_tag("pledges/_late_pledges_section.html", takes_context=True)
def late_pledges_section(context, campaign):
    """Show a succeeded campaign's open late pledges; nothing (and no query) for any other campaign."""
    offer = late_offer_taking_pledges(campaign=campaign) if campaign.status == CampaignStatus.SUCCEEDED else None
    return {
        "campaign": campaign,
        "offer": offer,
        "late_rewards": list(offer.rewards.all()) if offer else [],
        "is_initiator": context.get("is_initiator", False),
    }

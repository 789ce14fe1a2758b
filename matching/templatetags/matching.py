from django import template

from matching.selectors import campaign_matched_by

register = template.Library()


@register.inclusion_tag("matching/_matched_by.html")
def matched_by(campaign):
    """Render the "matched by" line of a campaign: each sponsor's pool and what it added (one query)."""
    return {"matches": campaign_matched_by(campaign_id=campaign.pk)}

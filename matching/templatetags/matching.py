from django import template
from django.template.loader import render_to_string

from matching.selectors import campaign_matched_by

register = template.Library()


@register.simple_tag
def matched_by(campaign, matches=None):
    """Render the "matched by" line of a campaign: each sponsor's pool and what it added.

    ``matches``: the campaign's matches if already read (``campaigns_matched_by`` for a list of
    cards); otherwise one query, and none of the line's template work for a campaign nobody matched.
    """
    if matches is None:
        matches = campaign_matched_by(campaign_id=campaign.pk)
    if not matches:
        return ""
    return render_to_string("matching/_matched_by.html", {"matches": matches})

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import currency_exponent, parse_amount
from matching.selectors import campaign_matching_line, campaign_pools_for_applications, match_estimates

register = template.Library()

# The amount a live estimate is shown for before the backer types one: 10.00 in the campaign's
# currency (10 in one without decimals).
ESTIMATE_DEFAULT_MAJOR = 10


@register.simple_tag(takes_context=True)
def matched_by(context, campaign, matches=None):
    """Render the "matched by" line of a campaign: each sponsor's pool and what it added, and live estimates.

    ``matches``: the campaign's matches if already read (``campaigns_matched_by`` for a list of
    cards), and then no estimate. Otherwise (its page) the published matches and, for each
    round open now that matches it, "Matched by <pool>: your 10.00 adds about ... of matching"
    linking to the pool: one query, and none of the line's template work, for a campaign
    nobody matched and no open round takes (``campaign_matching_line``).
    """
    estimate = ""
    if matches is None:
        line = campaign_matching_line(campaign=campaign)
        matches = line.matches
        if line.open_round_ids:
            estimate = _estimate_for(context, campaign, None, line.open_round_ids)
    if not matches:
        return estimate
    # Both parts are rendered templates, escaped there.
    return mark_safe(render_to_string("matching/_matched_by.html", {"matches": matches}) + estimate)  # noqa: S308


def estimate_amount(campaign, text=None) -> int:
    """Return the amount to estimate for: ``text`` if it is a valid amount, else the default 10.00."""
    if text not in (None, ""):
        try:
            return parse_amount(text, campaign.currency)
        except InvalidInput:
            pass
    return ESTIMATE_DEFAULT_MAJOR * 10 ** currency_exponent(campaign.currency)


def render_match_estimate(*, campaign, amount: int, estimates) -> str:
    """Return the live estimate's block (the same HTML for the page and for the JSON the form fetches)."""
    return render_to_string(
        "matching/_match_estimate.html", {"campaign": campaign, "amount": amount, "estimates": estimates}
    )


@register.simple_tag(takes_context=True)
def match_estimate(context, campaign, amount=None):
    """Render "Matched by <pool>: your 10.00 adds about 6.20 to 9.80 of matching" for each open round.

    ``amount``: the text the backer typed (the pledge form's value), else 10.00. Nothing for a
    campaign in no open round, nor for its initiator, whose own gifts are never matched.
    """
    return _estimate_for(context, campaign, amount, None)


def _estimate_for(context, campaign, amount_text, round_ids) -> str:
    """Return the estimate block, for ``round_ids`` if already known (None: ``match_estimates`` finds them)."""
    user = context.get("user")
    backer_id = user.pk if user is not None and user.is_authenticated else None
    if backer_id == campaign.initiator_id:
        return ""
    amount = estimate_amount(campaign, amount_text)
    estimates = match_estimates(campaign=campaign, amount=amount, backer_id=backer_id, round_ids=round_ids)
    if not estimates:
        return ""
    return render_match_estimate(campaign=campaign, amount=amount, estimates=estimates)


@register.inclusion_tag("matching/_campaign_applications.html")
def campaign_matching_applications(campaign):
    """Render, on a campaign's dashboard, its applications to pools and the pools it could apply to (one query)."""
    pools = campaign_pools_for_applications(campaign=campaign)
    return {
        "campaign": campaign,
        "applications": [pool for pool in pools if pool.application_status is not None],
        "pools": [pool for pool in pools if pool.application_status is None],
    }

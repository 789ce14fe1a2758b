"""Template tags of the lending app: a debt campaign's loan summary on its campaign page."""

from django import template

from lending.selectors import loan_terms_of
from risk.selectors import campaign_default_risk

register = template.Library()


@register.inclusion_tag("lending/_loan_summary.html")
def loan_summary(campaign):
    """Render a debt campaign's APR, term, repayment and risk grade (nothing if it has no terms)."""
    terms = loan_terms_of(campaign=campaign)
    return {
        "campaign": campaign,
        "terms": terms,
        "apr": f"{terms.rate_bps / 100:g}" if terms else "",
        "risk": campaign_default_risk(campaign=campaign) if terms else None,
    }

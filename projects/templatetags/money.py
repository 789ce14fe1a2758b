from django import template

from crowdfund_site.money import format_amount

register = template.Library()


@register.filter
def money(minor: int, currency: str) -> str:
    """Render minor units in the currency's own format: {{ amount|money:"USD" }}."""
    if minor is None:
        return ""
    return format_amount(minor, currency)

from django import template

from fulfilment.selectors import deliveries_of_backer

register = template.Library()


@register.inclusion_tag("fulfilment/_my_deliveries.html", takes_context=True)
def my_deliveries(context):
    """My pledges' rewards to confirm or report: one query, nothing for a backer without any."""
    user = context["request"].user
    deliveries = list(deliveries_of_backer(backer_id=user.pk)[:50]) if user.is_authenticated else []
    return {"deliveries": deliveries, "csrf_token": context.get("csrf_token")}

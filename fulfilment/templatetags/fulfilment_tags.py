from django import template

from fulfilment.selectors import deliveries_of_backer, delivery_record_cached

register = template.Library()


@register.inclusion_tag("fulfilment/_my_deliveries.html", takes_context=True)
def my_deliveries(context):
    """My pledges' rewards to confirm or report: one query, nothing for a backer without any."""
    user = context["request"].user
    deliveries = list(deliveries_of_backer(backer_id=user.pk)[:50]) if user.is_authenticated else []
    return {"deliveries": deliveries, "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("fulfilment/_delivery_record.html")
def delivery_record(initiator_id: int, rewards=True):
    """The initiator's delivery record; nothing (and no query) where ``rewards`` is empty.

    The same for every visitor, so a page cached for one shows it right for all.
    """
    if not rewards:
        return {"record": None}
    record = delivery_record_cached(initiator_id=initiator_id)
    return {"record": None if record.empty else record}

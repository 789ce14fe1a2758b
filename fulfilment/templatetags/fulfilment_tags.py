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
def delivery_record(initiator, rewards=True):
    """The initiator's delivery record; nothing (and no query) where ``rewards`` is empty.

    ``initiator``: the person, whose row says whether there is any record to read
    (``has_delivery_record``: most initiators have none, and then nothing is read), or their id.
    The same for every visitor, so a page cached for one shows it right for all.
    """
    if not rewards or getattr(initiator, "has_delivery_record", True) is False:
        return {"record": None}
    record = delivery_record_cached(initiator_id=getattr(initiator, "pk", initiator))
    return {"record": None if record.empty else record}

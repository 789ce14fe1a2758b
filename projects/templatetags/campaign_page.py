"""The campaign page's repeated pieces, written in Python: the same HTML as a template, at a fraction of its cost.

A first render of the campaign page (every campaign once a minute in a rush, see
benchmarks/README.md, pages) spent most of its template time on the reward list: a dozen
template nodes per reward, each resolving variables, filters and translations one by one. Here
each value is formatted once, with the escaping and localisation Django's template applies
(``{{ x }}``: ``conditional_escape(localize(x))``; ``{% blocktranslate %}``: the same for each
value, put into the translated text). The rare parts (an availability window, price steps) still
come from their templates.
"""

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import linebreaksbr
from django.template.loader import get_template
from django.utils import formats
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import template_localtime
from django.utils.translation import gettext

from crowdfund_site.money import format_amount
from crowdfund_site.urls_memo import reverse_memo
from projects.templatetags.campaigns import time_left
from projects.templatetags.pictures import picture

register = template.Library()


def _value(value) -> str:
    """Return ``value`` as ``{{ value }}`` renders it (localised, escaped)."""
    return conditional_escape(formats.localize(value))


@register.simple_tag(takes_context=True)
def reward_items(context, campaign, rewards, *, is_initiator, open_pledge_id, pledge_url):
    """Return the ``<li>`` of each reward tier, as ``projects/campaign_detail.html`` showed them."""
    can_edit = is_initiator and campaign.status in ("live", "succeeded")
    can_choose = campaign.is_open_for_pledges and not is_initiator
    choose_href = reverse_memo("pledges:manage", open_pledge_id) if open_pledge_id else pledge_url
    choose_text = gettext("Choose this reward")
    items = []
    for reward in rewards:
        sold_out = reward.sold_out
        amount = gettext("%(amount)s or more") % {
            "amount": _value(format_amount(reward.price_now_amount, campaign.currency))
        }
        image = (
            picture(reward.image, sizes="(max-width: 700px) 100vw, 340px", css_class="reward-image")
            if reward.image
            else ""
        )
        description = f"<div>{linebreaksbr(reward.description, autoescape=True)}</div>" if reward.description else ""
        if sold_out:
            left = f'<span class="pill pill-sold-out">{gettext("Sold out")}</span>'
        elif reward.remaining is not None:
            left = gettext("%(remaining)s of %(limit)s left") % {
                "remaining": _value(reward.remaining),
                "limit": _value(reward.quantity_limit),
            }
            left = f"<span>{left}</span>"
        else:
            left = f"<span>{gettext('Unlimited')}</span>"
        meta = [
            left,
            "<span>%s</span>" % (gettext("%(count)s claimed") % {"count": _value(intcomma(reward.claimed_count))}),
        ]
        if reward.estimated_delivery:
            when = _value(date_filter(reward.estimated_delivery, "YEAR_MONTH_FORMAT"))
            meta.append(f"<span>{gettext('Estimated delivery %(date)s') % {'date': when}}</span>")
        if reward.ships:
            meta.append(f"<span>{gettext('Ships: shipping for your country is added when you back it')}</span>")
        if reward.has_window or reward.price_steps:
            parts = {"reward": reward, "campaign": campaign}
            if reward.has_window:
                meta.append(get_template("projects/_reward_window.html").render(parts))
            if reward.price_steps:
                meta.append(get_template("projects/_reward_price_steps.html").render(parts))
        actions = ""
        if can_edit:
            actions += format_html(
                '\n  <p><a class="button button-secondary button-small" href="{}">{}</a></p>',
                reverse_memo("projects:campaign_reward_edit", campaign.slug, reward.pk),
                gettext("Edit reward"),
            )
        if can_choose and not sold_out and reward.available_now:
            actions += format_html(
                '\n  <p><a class="button button-secondary button-small" href="{}?reward={}">{}</a></p>',
                choose_href,
                reward.pk,
                choose_text,
            )
        items.append(
            f'<li class="reward{" is-sold-out" if sold_out else ""}">\n  {image}\n'
            f'  <p class="reward-amount">{amount}</p>\n  <h3>{_value(reward.title)}</h3>\n  {description}\n'
            f'  <p class="reward-meta">\n    ' + "\n    ".join(meta) + f"\n  </p>{actions}\n</li>"
        )
    return mark_safe("\n".join(items))  # noqa: S308 - every value above is escaped or a rendered template


@register.simple_tag
def deadline_texts(deadline) -> dict:
    """Return the deadline as the page writes it: ISO (``c``), long (``DATETIME_FORMAT``), short, and time left.

    Formatted once per render instead of once per mention (the banner, the funding box, the phone's bar).
    """
    if deadline is None:
        return {}
    local = template_localtime(deadline)
    return {
        "iso": date_filter(local, "c"),
        "long": date_filter(local, "DATETIME_FORMAT"),
        "short": date_filter(local, "SHORT_DATE_FORMAT"),
        "left": time_left(deadline),
    }


@register.simple_tag
def gallery_section(campaign):
    """Return the gallery's section (as ``projects/_gallery.html`` wrote it), or nothing without pictures."""
    if not campaign.gallery:
        return ""
    items = "".join(f"<li>{picture(item, sizes='(max-width: 700px) 100vw, 360px')}</li>" for item in campaign.gallery)
    return mark_safe(  # noqa: S308 - the heading is our translation, the pictures are escaped by picture()
        f'<section aria-labelledby="gallery-title">\n  <h2 id="gallery-title">{gettext("Gallery")}</h2>\n'
        f'  <ul class="gallery">{items}</ul>\n</section>'
    )

"""Template tags for the page head (canonical, hreflang, descriptions) and the campaign page's
follow / remind / notify buttons. Its share cards, JSON-LD and share links come built in one go
(``promotion.content.campaign_share``) with the page's context."""

from django import template
from django.conf import settings

from promotion.content import meta_description, site_base
from promotion.models import NoticeKind
from promotion.selectors import launch_notice_count, promotion_state

register = template.Library()

# hreflang values are BCP 47 tags; Django's language codes are lower case.
HREFLANG = {"en": "en", "zh-hans": "zh-Hans"}


def _language_url(path: str, code: str | None) -> str:
    return path if code is None else f"{path}?hl={code}"


@register.inclusion_tag("promotion/_seo_head.html", takes_context=True)
def seo_head(context):
    """Canonical URL and reciprocal hreflang alternates (each language, and x-default) of this page."""
    request = context.get("request")
    if request is None:
        return {}
    base = site_base(request)
    path = request.path
    chosen = request.GET.get("hl", "").lower()
    codes = [code for code, _name in settings.LANGUAGES]
    canonical = _language_url(path, chosen if chosen in codes else None)
    return {
        "canonical": base + canonical,
        "alternates": [(HREFLANG.get(code, code), base + _language_url(path, code)) for code in codes],
        "x_default": base + path,
    }


@register.simple_tag
def description_of(text: str) -> str:
    return meta_description(text or "")


@register.inclusion_tag("promotion/_campaign_buttons.html", takes_context=True)
def promotion_buttons(context, campaign, is_backer=False, is_initiator=False):
    """Follow the creator, "Remind me" (live) and "Notify me on launch" (pre-launch)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    state = promotion_state(user=user if signed_in and not is_initiator else None, campaign=campaign)
    return {
        "campaign": campaign,
        "request": request,
        "signed_in": signed_in,
        "is_initiator": is_initiator,
        "follows": state.follows,
        "can_remind": campaign.is_open_for_pledges and not is_backer and not is_initiator,
        "reminding": state.reminding,
        "prelaunch": campaign.status == "approved",
        "notifying": state.notifying,
        "notify_count": launch_notice_count(campaign=campaign) if campaign.status == "approved" else None,
        "ending": NoticeKind.ENDING,
        "launch": NoticeKind.LAUNCH,
    }

"""Template tags for the page head (canonical, hreflang, share cards, JSON-LD) and the
campaign page's share links and follow / remind / notify buttons."""

from urllib.parse import quote

from django import template
from django.conf import settings
from django.urls import reverse

from promotion.content import campaign_json_ld, card_version, meta_description, site_base
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


@register.inclusion_tag("promotion/_campaign_share_meta.html", takes_context=True)
def campaign_share_meta(context, campaign, rewards=()):
    """OpenGraph and Twitter card tags, the oEmbed link and the campaign's JSON-LD."""
    request = context.get("request")
    base = site_base(request)
    page_url = base + campaign.get_absolute_url()
    image_url = (
        base + reverse("promotion:share_card", kwargs={"slug": campaign.slug}) + f"?v={quote(card_version(campaign))}"
    )
    return {
        "campaign": campaign,
        "page_url": page_url,
        "image_url": image_url,
        "description": meta_description(campaign.summary),
        "oembed_url": base + reverse("promotion:oembed") + "?url=" + quote(page_url, safe="") + "&format=json",
        "json_ld": campaign_json_ld(campaign=campaign, rewards=rewards, page_url=page_url, image_url=image_url),
    }


@register.inclusion_tag("promotion/_share_links.html", takes_context=True)
def share_links(context, campaign):
    """Plain share links (no third-party script runs on our page) and the embed code's link."""
    page_url = site_base(context.get("request")) + campaign.get_absolute_url()
    url, title = quote(page_url, safe=""), quote(campaign.title, safe="")
    return {
        "campaign": campaign,
        "links": [
            ("X", f"https://twitter.com/intent/tweet?url={url}&text={title}"),
            ("Facebook", f"https://www.facebook.com/sharer/sharer.php?u={url}"),
            ("LinkedIn", f"https://www.linkedin.com/sharing/share-offsite/?url={url}"),
            ("Weibo", f"https://service.weibo.com/share/share.php?url={url}&title={title}"),
            ("E-mail", f"mailto:?subject={title}&body={url}"),
        ],
    }


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

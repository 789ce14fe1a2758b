"""What the share card, the embed and the page's structured data say about a campaign.

Shared by the views and template tags so the card, the widget and the JSON-LD agree.
"""

import json
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.utils.html import strip_tags
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext

from crowdfund_site.money import currency_exponent, format_amount
from crowdfund_site.urls_memo import reverse_memo
from projects.models import Campaign, CampaignStatus
from projects.templatetags.campaigns import time_left

from .cards import CardContent

DESCRIPTION_MAX = 155


def cover_name(campaign: Campaign) -> str:
    """Return the campaign's cover image name in media storage, or "" without one.

    Covers are another change's (a ``cover`` image field on the campaign); until it lands,
    every campaign has none and the card is drawn on a plain background.
    """
    cover = getattr(campaign, "cover", None)
    return getattr(cover, "name", "") or ""


def time_left_text(campaign: Campaign) -> str:
    if campaign.status == CampaignStatus.APPROVED:
        return gettext("Launching soon")
    if campaign.is_open_for_pledges:
        return time_left(campaign.deadline)
    return campaign.get_status_display()


def card_content(campaign: Campaign) -> CardContent:
    return CardContent(
        title=campaign.title,
        percent=campaign.percent_funded,
        raised=gettext("%(raised)s pledged of %(goal)s")
        % {
            "raised": format_amount(campaign.pledged_amount, campaign.currency),
            "goal": format_amount(campaign.goal, campaign.currency),
        },
        backers=ngettext("%(count)d backer", "%(count)d backers", campaign.backer_count)
        % {"count": campaign.backer_count},
        time_left=time_left_text(campaign),
        cover_name=cover_name(campaign),
    )


def card_version(campaign: Campaign) -> str:
    """Return a token that changes when the card's figures do, for the image's URL."""
    return f"{campaign.pledged_amount}-{campaign.backer_count}-{campaign.status}"


def meta_description(text: str) -> str:
    """Return ``text`` as a one-line description of at most 155 characters."""
    text = " ".join(strip_tags(text).split())
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1].rstrip() + "…"


def _decimal(minor: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    if exponent == 0:
        return str(minor)
    return f"{minor // 10**exponent}.{minor % 10**exponent:0{exponent}d}"


def campaign_json_ld(*, campaign: Campaign, rewards, page_url: str, image_url: str, description: str) -> str:
    """Return the campaign as schema.org JSON-LD (a Product with an Offer per reward), safe to inline."""
    offers = [
        {
            "@type": "Offer",
            "name": reward.title,
            "price": _decimal(reward.minimum_amount, campaign.currency),
            "priceCurrency": campaign.currency,
            "availability": "https://schema.org/SoldOut" if reward.sold_out else "https://schema.org/InStock",
            "url": page_url,
            **({"validThrough": campaign.deadline.isoformat()} if campaign.deadline else {}),
        }
        for reward in rewards
    ]
    data = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": campaign.title,
        "description": description,
        "url": page_url,
        "image": image_url,
        "brand": {"@type": "Person", "name": campaign.initiator.public_name},
        "category": campaign.category.name,
        "offers": offers,
    }
    text = json.dumps(data, ensure_ascii=False)
    # Inside a script element, "</" would end it: escape the characters that could.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return mark_safe(text)  # noqa: S308 - every character that could end the element is escaped above


@dataclass(frozen=True)
class CampaignShare:
    """What the campaign page tells crawlers and social sites, and its plain share links."""

    page_url: str
    image_url: str
    description: str
    oembed_url: str
    json_ld: str
    links: list[tuple[str, str]]


def campaign_share(*, campaign: Campaign, rewards, base: str) -> CampaignShare:
    """Return the page's description, OpenGraph/Twitter card URLs, oEmbed link, JSON-LD and share links.

    Built once per render from one page URL: the head's tags and the share box use the same.
    ``base``: the scheme and host (``site_base``). The share links are plain links, so no
    third-party script runs on our page.
    """
    page_url = base + campaign.get_absolute_url()
    image_url = base + reverse_memo("promotion:share_card", campaign.slug) + f"?v={quote(card_version(campaign))}"
    description = meta_description(campaign.summary)
    url, title = quote(page_url, safe=""), quote(campaign.title, safe="")
    return CampaignShare(
        page_url=page_url,
        image_url=image_url,
        description=description,
        oembed_url=base + reverse_memo("promotion:oembed") + "?url=" + url + "&format=json",
        json_ld=campaign_json_ld(
            campaign=campaign, rewards=rewards, page_url=page_url, image_url=image_url, description=description
        ),
        links=[
            ("X", f"https://twitter.com/intent/tweet?url={url}&text={title}"),
            ("Facebook", f"https://www.facebook.com/sharer/sharer.php?u={url}"),
            ("LinkedIn", f"https://www.linkedin.com/sharing/share-offsite/?url={url}"),
            ("Weibo", f"https://service.weibo.com/share/share.php?url={url}&title={title}"),
            ("E-mail", f"mailto:?subject={title}&body={url}"),
        ],
    )


def site_base(request) -> str:
    """Return the scheme and host of this request: absolute URLs for crawlers and social sites."""
    return request.build_absolute_uri("/").rstrip("/") if request is not None else settings.SITE_URL.rstrip("/")

"""Share cards, OpenGraph / Twitter tags, JSON-LD, share links, the embed widget and oEmbed."""

import io
import json
import re

import pytest
from django.core.cache import cache
from PIL import Image

from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory
from promotion import cards
from promotion.cards import CardContent, share_card_jpeg

pytestmark = pytest.mark.django_db


def _card_url(html: str) -> str:
    return re.search(r'<meta property="og:image" content="http://testserver([^"]+)">', html).group(1)


def test_the_share_card_is_a_1200_by_630_jpeg_of_the_campaign(client):
    campaign = LiveCampaignFactory(title="Telescopes for every school")
    response = client.get(f"/campaigns/{campaign.slug}/share-card.jpg")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as picture:
        assert picture.format == "JPEG"
        assert picture.size == (1200, 630)


def test_a_chinese_title_is_drawn_and_a_title_too_long_for_three_lines_is_cut():
    for title in ("用开源硬件做一台给孩子们的天文望远镜" * 4, "word " * 80):
        png = share_card_jpeg(CardContent(title=title, percent=250, raised="x", backers="y", time_left="z"))
        with Image.open(io.BytesIO(png)) as picture:
            assert picture.size == (1200, 630)


def test_the_progress_bar_grows_with_the_figures():
    def green_pixels(percent: int) -> int:
        data = share_card_jpeg(CardContent(title="T", percent=percent, raised="r", backers="b", time_left="t"))
        with Image.open(io.BytesIO(data)) as picture:
            row = [picture.getpixel((x, 630 - 64 - 150 + 14)) for x in range(1200)]
        return sum(1 for r, g, b in row if g > 130 and r < 100 and b < 100)

    assert green_pixels(0) == 0
    assert 250 < green_pixels(25) < 290
    assert green_pixels(100) > 1000


def test_the_card_is_cached_and_redrawn_when_the_figures_move(client, monkeypatch):
    campaign = LiveCampaignFactory()
    drawn = []
    real = cards.share_card_jpeg
    monkeypatch.setattr(cards, "share_card_jpeg", lambda content: drawn.append(content) or real(content))
    url = f"/campaigns/{campaign.slug}/share-card.jpg"
    first = client.get(url).content
    assert client.get(url).content == first
    assert len(drawn) == 1
    pledge_held(campaign=campaign, amount=50_000)
    second = client.get(url).content
    assert len(drawn) == 2
    assert second != first
    assert drawn[1].percent == 50
    assert "1 backer" in drawn[1].backers


def test_the_page_links_a_card_url_that_changes_when_the_figures_move(client):
    campaign = LiveCampaignFactory()
    before = _card_url(client.get(campaign.get_absolute_url()).content.decode())
    pledge_held(campaign=campaign)
    after = _card_url(client.get(campaign.get_absolute_url()).content.decode())
    assert before != after
    assert client.get(after).status_code == 200


def test_the_campaign_page_has_opengraph_and_large_image_twitter_tags(client):
    campaign = LiveCampaignFactory(title="Quiet <keyboards>", summary="Keys that do not click")
    html = client.get(campaign.get_absolute_url()).content.decode()
    assert '<meta property="og:title" content="Quiet &lt;keyboards&gt;">' in html
    assert '<meta property="og:description" content="Keys that do not click">' in html
    assert f'<meta property="og:url" content="http://testserver/campaigns/{campaign.slug}/">' in html
    assert '<meta property="og:image:width" content="1200">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html


def test_json_ld_describes_the_campaign_with_an_offer_per_reward(client):
    campaign = LiveCampaignFactory(title="</script><script>alert(1)</script>")
    RewardTierFactory(campaign=campaign, title="Early bird", minimum_amount=2_000)
    RewardTierFactory(campaign=campaign, title="Gone", minimum_amount=9_950, quantity_limit=1, claimed_count=1)
    html = client.get(campaign.get_absolute_url()).content.decode()
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.DOTALL)
    assert len(blocks) == 1
    data = json.loads(blocks[0])
    assert data["@type"] == "Product"
    assert data["name"] == campaign.title  # the markup is escaped inside the block, not lost
    offers = {offer["name"]: offer for offer in data["offers"]}
    assert offers["Early bird"]["price"] == "20.00"
    assert offers["Early bird"]["priceCurrency"] == "USD"
    assert offers["Early bird"]["availability"] == "https://schema.org/InStock"
    assert offers["Gone"]["price"] == "99.50"
    assert offers["Gone"]["availability"] == "https://schema.org/SoldOut"
    assert "<script>alert(1)" not in html


def test_share_links_are_plain_links_and_no_third_party_script_is_loaded(client):
    campaign = LiveCampaignFactory()
    html = client.get(campaign.get_absolute_url()).content.decode()
    assert "https://twitter.com/intent/tweet?url=http%3A%2F%2Ftestserver%2Fcampaigns%2F" in html
    assert "https://www.facebook.com/sharer/sharer.php?u=" in html
    assert "service.weibo.com" in html
    scripts = re.findall(r"<script[^>]*src=\"([^\"]+)\"", html)
    assert scripts
    assert all(src.startswith("/static/") for src in scripts)


def test_the_embed_may_be_framed_by_any_site_and_nothing_else_may(client):
    campaign = LiveCampaignFactory()
    embed = client.get(f"/embed/{campaign.slug}/")
    assert embed.status_code == 200
    assert "X-Frame-Options" not in embed
    assert "frame-ancestors *" in embed["Content-Security-Policy"]
    html = embed.content.decode()
    assert campaign.title in html
    assert "days left" in html
    assert "Back this project" in html
    page = client.get(campaign.get_absolute_url())
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


def test_the_embed_is_kept_60_seconds(client, monkeypatch):
    campaign = LiveCampaignFactory(title="Before")
    first = client.get(f"/embed/{campaign.slug}/")
    assert first["Cache-Control"] == "public, max-age=60"
    stored = []
    real_set = cache.set
    monkeypatch.setattr(
        cache, "set", lambda key, value, timeout=None: stored.append(timeout) or real_set(key, value, timeout)
    )
    campaign.title = "After"
    campaign.save()
    assert "Before" in client.get(f"/embed/{campaign.slug}/").content.decode()
    cache.clear()
    assert "After" in client.get(f"/embed/{campaign.slug}/").content.decode()
    assert stored == [60]


def test_a_draft_has_no_card_embed_or_oembed(client):
    draft = CampaignFactory()
    assert client.get(f"/campaigns/{draft.slug}/share-card.jpg").status_code == 404
    assert client.get(f"/embed/{draft.slug}/").status_code == 404
    response = client.get(f"/oembed?url=http://testserver/campaigns/{draft.slug}/")
    assert response.status_code == 404


def test_oembed_answers_a_rich_iframe_of_the_widget(client):
    campaign = LiveCampaignFactory(status=CampaignStatus.LIVE)
    response = client.get(f"/oembed?url=http://testserver/campaigns/{campaign.slug}/&maxwidth=300")
    assert response.status_code == 200
    data = response.json()
    assert data["version"] == "1.0"
    assert data["type"] == "rich"
    assert data["width"] == 300
    assert f'src="http://testserver/embed/{campaign.slug}/"' in data["html"]
    assert data["title"] == campaign.title
    html = client.get(campaign.get_absolute_url()).content.decode()
    assert 'type="application/json+oembed"' in html


@pytest.mark.parametrize(
    "query",
    [
        "url=",
        "url=http://evil.example/campaigns/x/",
        "url=http://testserver/accounts/login/",
        "url=http://testserver/campaigns/none-such/",
        "url=" + "x" * 5000,
        "url=javascript:alert(1)",
    ],
)
def test_oembed_refuses_what_is_not_a_campaign_page_here(client, query):
    response = client.get("/oembed?" + query)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_oembed_says_only_json_is_supported(client):
    campaign = LiveCampaignFactory()
    response = client.get(f"/oembed?url=http://testserver/campaigns/{campaign.slug}/&format=xml")
    assert response.status_code == 501

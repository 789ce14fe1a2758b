"""The campaign page's smaller parts, in English and Chinese: each shown exactly when it applies.

The page skips a part's template when its condition is false (a first render is cheaper for
it); these tests pin what a visitor sees either way: the verified badge, a reward's window and
price steps, "Where the money is", the share box and the head's cards and JSON-LD, all built
from the one page URL.
"""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db

CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def campaign():
    campaign = LiveCampaignFactory(title="Quiet keyboards", summary="Keys that <b>do not</b> click")
    User.objects.filter(pk=campaign.initiator_id).update(email_verified=True)
    RewardTierFactory(
        campaign=campaign,
        title="Early bird",
        minimum_amount=2_500,
        quantity_limit=100,
        price_steps=[{"price": 2_000, "until_claimed": 10, "until": None}],
    )
    RewardTierFactory(
        campaign=campaign, title="Limited", minimum_amount=5_000, available_until=timezone.now() + timedelta(days=3)
    )
    return campaign


def _page(client, campaign, **headers) -> str:
    response = client.get(campaign.get_absolute_url(), **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_the_parts_that_apply_are_shown_in_english(client, campaign):
    page = _page(client, campaign)
    url = f"http://testserver/campaigns/{campaign.slug}/"
    quoted = url.replace(":", "%3A").replace("/", "%2F")
    assert page.count('<span class="badge-verified"') == 1
    assert page.count('<span class="reward-steps">first 10 at $20.00, then $25.00</span>') == 1
    assert page.count('<span class="reward-window">Available until ') == 1
    assert f'<a href="{reverse("settlement:campaign_money", args=[campaign.slug])}">Where the money is</a>' in page
    assert '<meta name="description" content="Keys that do not click">' in page
    assert f'<meta property="og:url" content="{url}">' in page
    assert '<meta property="og:description" content="Keys that do not click">' in page
    assert f'href="http://testserver/oembed?url={quoted}&amp;format=json"' in page
    assert f'<a href="https://www.facebook.com/sharer/sharer.php?u={quoted}"' in page
    assert f'<a href="{reverse("promotion:embed", args=[campaign.slug])}">Embed</a>' in page
    data = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', page).group(1))
    assert (data["url"], data["description"]) == (url, "Keys that do not click")
    assert [offer["name"] for offer in data["offers"]] == ["Early bird", "Limited"]


def test_the_same_parts_speak_chinese(client, campaign):
    page = _page(client, campaign, **CHINESE)
    assert "已验证" in page
    assert '<span class="reward-steps">前 10 份 $20.00, 之后 $25.00</span>' in page
    assert '<span class="reward-window">供应至 ' in page
    assert "资金去向" in page
    assert "分享这个项目" in page
    assert f'<a href="{reverse("promotion:embed", args=[campaign.slug])}">嵌入</a>' in page


def test_parts_that_do_not_apply_are_left_out(client):
    campaign = LiveCampaignFactory()  # initiator not verified, rewards without window or steps
    RewardTierFactory(campaign=campaign)
    page = _page(client, campaign)
    assert "badge-verified" not in page
    assert "reward-steps" not in page
    assert "reward-window" not in page
    assert "gallery-title" not in page
    assert "Where the money is" in page  # launched

    draft = CampaignFactory(status=CampaignStatus.DRAFT)
    client.force_login(draft.initiator)
    preview = _page(client, draft)
    assert "Where the money is" not in preview  # never launched: no money to show
    assert "Add stretch goals" in preview  # the initiator is offered stretch goals, though there are none

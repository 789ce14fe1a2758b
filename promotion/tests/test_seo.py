"""Search engines: sitemap index and files, robots.txt, canonical URLs, hreflang, descriptions, old slugs."""

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import pytest
from django.test import override_settings
from django.urls import reverse

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from projects.models import CampaignStatus, CampaignUpdate
from projects.tests.factories import CampaignFactory, LiveCampaignFactory
from promotion import sitemaps
from promotion.services import campaign_slug_change

NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
W3C_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$")

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _check_sitemap_protocol(xml: bytes, *, root_name: str, entry: str) -> list[dict]:
    """Check the structure sitemaps.org's schema asks for (stdlib parser, no network); return the entries.

    The root and every element are in the protocol's namespace; each entry has exactly one
    absolute http(s) <loc> of at most 2,048 characters, and at most one <lastmod> in W3C
    datetime form; nothing else; at least one and at most 50,000 entries; UTF-8.
    """
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    xml.decode("utf-8")
    root = ET.fromstring(xml)  # noqa: S314 - our own output, parsed to check it
    assert root.tag == NS + root_name
    entries = []
    for child in root:
        assert child.tag == NS + entry, child.tag
        names = [grandchild.tag for grandchild in child]
        assert names.count(NS + "loc") == 1
        assert names.count(NS + "lastmod") <= 1
        assert set(names) <= {NS + "loc", NS + "lastmod"}
        loc = child.find(NS + "loc").text
        assert len(loc) <= 2048
        assert urlsplit(loc).scheme in ("http", "https")
        assert urlsplit(loc).netloc
        lastmod = child.find(NS + "lastmod")
        if lastmod is not None:
            assert W3C_DATETIME.match(lastmod.text), lastmod.text
            datetime.fromisoformat(lastmod.text)
        entries.append({"loc": loc, "lastmod": None if lastmod is None else lastmod.text})
    assert 1 <= len(entries) <= 50_000
    return entries


def test_sitemap_index_lists_files_that_list_every_public_campaign_and_update(client):
    live = LiveCampaignFactory()
    succeeded = LiveCampaignFactory(status=CampaignStatus.SUCCEEDED)
    draft = CampaignFactory()
    public = CampaignUpdate.objects.create(campaign=live, author=live.initiator, title="News", body="b")
    CampaignUpdate.objects.create(campaign=live, author=live.initiator, title="Secret", body="b", backers_only=True)
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/xml"
    files = _check_sitemap_protocol(_body(response), root_name="sitemapindex", entry="sitemap")
    locs = []
    for file in files:
        assert file["lastmod"] is not None
        part = client.get(urlsplit(file["loc"]).path)
        assert part.status_code == 200
        locs += [e["loc"] for e in _check_sitemap_protocol(_body(part), root_name="urlset", entry="url")]
    assert f"http://testserver/campaigns/{live.slug}/" in locs
    assert f"http://testserver/campaigns/{succeeded.slug}/" in locs
    assert f"http://testserver/campaigns/{live.slug}/updates/{public.pk}/" in locs
    assert not any(draft.slug in loc for loc in locs)
    # The backers-only update is not listed; the creators' pages are (their own test below).
    assert len([loc for loc in locs if "/campaigns/" in loc]) == 3
    # Every listed address answers.
    for loc in locs:
        assert client.get(urlsplit(loc).path).status_code == 200


def test_sitemap_lists_the_pages_of_people_who_started_a_public_campaign(client):
    creator = LiveCampaignFactory().initiator
    later = LiveCampaignFactory(initiator=creator, status=CampaignStatus.SUCCEEDED)
    only_a_draft = CampaignFactory().initiator
    backer = UserFactory()
    index = _check_sitemap_protocol(_body(client.get("/sitemap.xml")), root_name="sitemapindex", entry="sitemap")
    (creators_file,) = [f for f in index if "/sitemap-creators-" in f["loc"]]
    body = _body(client.get(urlsplit(creators_file["loc"]).path))
    entries = _check_sitemap_protocol(body, root_name="urlset", entry="url")
    assert [e["loc"] for e in entries] == ["http://testserver" + reverse("accounts:creator", args=[creator.username])]
    # The page lists the campaigns: it last changed when the latest of them did.
    later.refresh_from_db()
    assert datetime.fromisoformat(entries[0]["lastmod"]) == later.updated_at.replace(microsecond=0)
    for nobody in (only_a_draft, backer):
        assert reverse("accounts:creator", args=[nobody.username]).encode() not in body


def test_sitemap_splits_into_files_of_at_most_the_limit(client, monkeypatch):
    monkeypatch.setattr(sitemaps, "URLS_PER_FILE", 2)
    monkeypatch.setattr(sitemaps, "CHUNK", 1)
    campaigns = [LiveCampaignFactory() for _ in range(5)]
    files = _check_sitemap_protocol(_body(client.get("/sitemap.xml")), root_name="sitemapindex", entry="sitemap")
    campaign_files = [f["loc"] for f in files if "sitemap-campaigns-" in f["loc"]]
    assert len(campaign_files) == 3
    seen = []
    for loc in campaign_files:
        entries = _check_sitemap_protocol(_body(client.get(urlsplit(loc).path)), root_name="urlset", entry="url")
        assert len(entries) <= 2
        seen += [e["loc"] for e in entries]
    assert seen == [f"http://testserver/campaigns/{c.slug}/" for c in sorted(campaigns, key=lambda c: c.pk)]
    assert client.get("/sitemap-campaigns-4.xml").status_code == 404
    assert client.get("/sitemap-updates-1.xml").status_code == 404  # empty sections are left out
    assert client.get("/sitemap-nonsense-1.xml").status_code == 404


def test_robots_txt_points_to_the_sitemap_and_keeps_crawlers_out_of_private_pages(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    text = response.content.decode()
    assert "User-agent: *" in text
    assert "Sitemap: http://testserver/sitemap.xml" in text
    assert "Disallow: /admin/" in text
    assert "Disallow: /pledges/" in text


def test_robots_txt_lets_crawlers_reach_creator_pages_but_not_the_rest_of_accounts(client):
    # Python's parser takes the first matching rule, as some crawlers do; Google takes the longest.
    creator = UserFactory()
    parser = RobotFileParser()
    parser.parse(client.get("/robots.txt").content.decode().splitlines())
    assert parser.can_fetch("*", "http://testserver" + reverse("accounts:creator", args=[creator.username]))
    assert not parser.can_fetch("*", "http://testserver" + reverse("accounts:login"))


def test_robots_txt_lets_crawlers_reach_the_pledge_form_but_not_a_backers_own_pledges(client):
    parser = RobotFileParser()
    parser.parse(client.get("/robots.txt").content.decode().splitlines())
    assert parser.can_fetch("*", "http://testserver" + reverse("pledges:create", args=["some-campaign"]))
    assert parser.can_fetch("*", "http://testserver/pledges/new/some-campaign/?reward=3")
    for private in (reverse("pledges:list"), reverse("pledges:detail", args=[7]), "/pledges/7/manage/"):
        assert not parser.can_fetch("*", "http://testserver" + private), private


def _head_links(html: str) -> tuple[str, dict[str, str]]:
    canonical = re.search(r'<link rel="canonical" href="([^"]+)">', html).group(1)
    alternates = dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', html))
    return canonical, alternates


@pytest.mark.parametrize("path_of", [lambda c: "/", lambda c: c.get_absolute_url()])
def test_hreflang_alternates_are_reciprocal_and_each_answers_in_its_language(client, path_of):
    campaign = LiveCampaignFactory()
    path = path_of(campaign)
    _canonical, alternates = _head_links(client.get(path).content.decode())
    assert set(alternates) == {"en", "zh-Hans", "x-default"}
    for code, url in alternates.items():
        page = client.get(urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else ""))
        assert page.status_code == 200
        html = page.content.decode()
        canonical, theirs = _head_links(html)
        # Reciprocal: every alternate lists the same set, itself included.
        assert theirs == alternates
        assert canonical == url
        if code == "zh-Hans":
            assert '<html lang="zh-hans">' in html
        if code == "en":
            assert '<html lang="en">' in html


def test_language_query_wins_over_the_cookie_and_accept_language(client):
    page = client.get("/?hl=en", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert '<html lang="en">' in page
    page = client.get("/?hl=zh-hans").content.decode()
    assert '<html lang="zh-hans">' in page
    assert '<html lang="en">' in client.get("/?hl=klingon").content.decode()


def test_every_public_page_has_a_meta_description(client):
    campaign = LiveCampaignFactory(summary="Solar lamps for <b>schools</b> in the hills")
    update = CampaignUpdate.objects.create(
        campaign=campaign, author=campaign.initiator, title="News", body="First batch shipped"
    )
    pages = {
        "/": "Back creative projects",
        campaign.get_absolute_url(): "Solar lamps for schools in the hills",
        f"/campaigns/{campaign.slug}/updates/{update.pk}/": "First batch shipped",
        "/accounts/login/": "",
    }
    for path, expected in pages.items():
        html = client.get(path).content.decode()
        found = re.search(r'<meta name="description" content="([^"]+)">', html)
        assert found is not None, path
        assert expected in found.group(1)


def test_an_old_slug_answers_301_to_the_current_one_for_every_campaign_page(client):
    campaign = LiveCampaignFactory(slug="first-name")
    campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug="second-name")
    campaign.refresh_from_db()
    campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug="third-name")
    for old in ("first-name", "second-name"):
        response = client.get(f"/campaigns/{old}/?ref=news")
        assert response.status_code == 301
        assert response["Location"] == "/campaigns/third-name/?ref=news"
        assert client.get(f"/embed/{old}/").status_code == 301
    assert client.get("/campaigns/third-name/").status_code == 200
    canonical, _ = _head_links(client.get("/campaigns/third-name/").content.decode())
    assert canonical == "http://testserver/campaigns/third-name/"
    assert client.get("/campaigns/never-was/").status_code == 404


def test_a_campaign_can_take_back_its_own_old_slug_but_never_another_campaigns():
    campaign = LiveCampaignFactory(slug="mine")
    other = LiveCampaignFactory(slug="theirs")
    campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug="mine-2")
    with pytest.raises(Conflict):
        campaign_slug_change(campaign=other, actor=other.initiator, slug="mine")
    with pytest.raises(Conflict):
        campaign_slug_change(campaign=other, actor=other.initiator, slug="mine-2")
    campaign.refresh_from_db()
    campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug="mine")
    campaign.refresh_from_db()
    assert campaign.slug == "mine"
    assert list(campaign.old_slugs.values_list("slug", flat=True)) == ["mine-2"]


@pytest.mark.parametrize("slug", ["", "Has Spaces", "<b>x</b>", "x" * 200])
def test_a_bad_slug_is_refused_and_nothing_changes(slug):
    campaign = LiveCampaignFactory(slug="stays")
    with pytest.raises(InvalidInput):
        campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug=slug)
    campaign.refresh_from_db()
    assert campaign.slug == "stays"
    assert not campaign.old_slugs.exists()


def test_only_the_initiator_or_staff_change_a_slug():
    campaign = LiveCampaignFactory(slug="stays")
    with pytest.raises(NotAllowed):
        campaign_slug_change(campaign=campaign, actor=UserFactory(), slug="taken-over")
    campaign.refresh_from_db()
    assert campaign.slug == "stays"


@override_settings(PAGE_CACHE_SECONDS=10)
def test_a_renamed_campaigns_cached_page_is_not_served_under_the_old_slug(client, django_capture_on_commit_callbacks):
    campaign = LiveCampaignFactory(slug="before")
    assert client.get("/campaigns/before/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug="after")
    assert client.get("/campaigns/before/").status_code == 301

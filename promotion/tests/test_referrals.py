"""Referral links: clicks, sessions, pledges, dropped pledges, amounts and UTM per tag, referring
sites for untagged traffic, last-arrival attribution across sessions within 30 days."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from pledges.models import Pledge
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory
from promotion.middleware import VISITOR_COOKIE
from promotion.models import ReferralLink, ReferralVisit, VisitKind
from promotion.selectors import referral_report
from promotion.services import referral_link_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clicks_stored_at_once(settings):
    # These tests read the report right after the clicks: with the in-memory cache each click is
    # stored at once; the Redis buffer beat copies from has its own tests (test_visit_buffer.py).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def campaign():
    campaign = LiveCampaignFactory()
    referral_link_create(campaign=campaign, actor=campaign.initiator, tag="newsletter", label="March issue")
    referral_link_create(campaign=campaign, actor=campaign.initiator, tag="podcast")
    return campaign


def _row(report, name):
    return next(row for row in report.rows if row.name == name)


def test_a_tagged_click_a_pledge_start_and_a_pledge_are_counted_for_the_tag(client, campaign):
    page = client.get(campaign.get_absolute_url() + "?ref=newsletter&utm_source=mail&utm_medium=email")
    assert page.status_code == 200
    assert page.cookies[VISITOR_COOKIE]["max-age"] == 30 * 86_400
    backer = UserFactory()
    client.force_login(backer)
    assert client.get(f"/pledges/new/{campaign.slug}/").status_code == 200
    pledge_held(campaign=campaign, backer=backer, amount=7_500)
    report = referral_report(campaign=campaign)
    row = _row(report, "newsletter")
    assert (row.clicks, row.sessions, row.started, row.pledges, row.dropped, row.amount) == (1, 1, 1, 1, 0, 7_500)
    assert row.label == "March issue"
    assert row.utm == {"utm_source": ["mail"], "utm_medium": ["email"]}
    assert _row(report, "podcast").clicks == 0
    assert report.direct.pledges == 0


def test_attribution_follows_the_visitor_across_sessions_and_counts_the_last_arrival(client, campaign):
    client.get(campaign.get_absolute_url() + "?ref=newsletter")
    client.get(campaign.get_absolute_url() + "?ref=podcast")
    backer = UserFactory()
    # A later session: logged in days after, the session cookie is new but the visitor's is kept.
    client.force_login(backer)
    client.get(f"/pledges/new/{campaign.slug}/")
    client.logout()
    client.force_login(backer)
    pledge_held(campaign=campaign, backer=backer, amount=2_000)
    report = referral_report(campaign=campaign)
    assert _row(report, "podcast").pledges == 1
    assert _row(report, "podcast").amount == 2_000
    assert _row(report, "newsletter").pledges == 0
    assert _row(report, "newsletter").clicks == 1
    assert _row(report, "newsletter").sessions == 1


def test_an_arrival_more_than_30_days_before_the_pledge_does_not_count(client, campaign):
    client.get(campaign.get_absolute_url() + "?ref=newsletter")
    backer = UserFactory()
    client.force_login(backer)
    client.get(f"/pledges/new/{campaign.slug}/")
    ReferralVisit.objects.update(created_at=timezone.now() - timedelta(days=31))
    pledge_held(campaign=campaign, backer=backer)
    report = referral_report(campaign=campaign)
    assert _row(report, "newsletter").pledges == 0
    assert report.direct.pledges == 1
    # Within the window it would have counted.
    ReferralVisit.objects.update(created_at=timezone.now() - timedelta(days=29))
    assert _row(referral_report(campaign=campaign), "newsletter").pledges == 1


def test_a_started_pledge_that_was_not_finished_is_dropped(client, campaign):
    client.get(campaign.get_absolute_url() + "?ref=podcast")
    client.force_login(UserFactory())
    client.get(f"/pledges/new/{campaign.slug}/")
    row = _row(referral_report(campaign=campaign), "podcast")
    assert (row.started, row.dropped, row.pledges) == (1, 1, 0)


def test_untagged_traffic_is_split_by_referring_site_and_own_pages_are_not_a_site(client, campaign):
    url = campaign.get_absolute_url()
    client.get(url, HTTP_REFERER="https://news.ycombinator.com/item?id=1")
    client.get(url, HTTP_REFERER="https://news.ycombinator.com/item?id=2")
    client.get(url, HTTP_REFERER="https://www.reddit.com/r/boardgames/")
    client.get(url, HTTP_REFERER="http://testserver/")  # from our own discover page
    client.get(url)  # typed in: nothing to record
    report = referral_report(campaign=campaign)
    assert [(row.name, row.clicks) for row in report.sites] == [("news.ycombinator.com", 2), ("www.reddit.com", 1)]
    assert ReferralVisit.objects.count() == 3


@override_settings(PAGE_CACHE_SECONDS=10)
def test_a_click_is_recorded_when_the_page_comes_from_the_page_cache(client, campaign):
    url = campaign.get_absolute_url() + "?ref=newsletter"
    assert client.get(url).status_code == 200
    # Changed behind the cache's back: a page still showing the old title is the stored copy.
    type(campaign).objects.filter(pk=campaign.pk).update(title="Renamed since")
    client.cookies.clear()
    second = client.get(url).content.decode()
    assert campaign.title in second
    assert "Renamed since" not in second
    assert ReferralVisit.objects.filter(tag="newsletter", kind=VisitKind.CLICK).count() == 2
    assert _row(referral_report(campaign=campaign), "newsletter").sessions == 2


@pytest.mark.parametrize("tag", ["x" * 10_000, "<script>alert(1)</script>", "a b", "ü"])
def test_a_visit_with_a_bad_tag_records_nothing_and_still_shows_the_page(client, campaign, tag):
    response = client.get(campaign.get_absolute_url(), {"ref": tag})
    assert response.status_code == 200
    assert not ReferralVisit.objects.exists()
    assert VISITOR_COOKIE not in response.cookies


def test_utm_values_too_long_or_with_markup_are_not_kept(client, campaign):
    client.get(
        campaign.get_absolute_url(), {"ref": "podcast", "utm_source": "x" * 101, "utm_medium": "<b>", "utm_term": "ok"}
    )
    visit = ReferralVisit.objects.get()
    assert (visit.utm_source, visit.utm_medium, visit.utm_term) == ("", "", "ok")


@pytest.mark.parametrize(
    ("tag", "code"), [("x" * 10_000, "tag_too_long"), ("<b>hi</b>", "invalid_tag"), ("", "invalid_tag")]
)
def test_a_bad_tag_is_refused_with_a_clear_error_and_nothing_stored(campaign, tag, code):
    with pytest.raises(InvalidInput) as refused:
        referral_link_create(campaign=campaign, actor=campaign.initiator, tag=tag)
    assert refused.value.code == code
    assert ReferralLink.objects.filter(campaign=campaign).count() == 2


def test_a_tag_is_unique_per_campaign_and_only_the_initiator_makes_links(campaign):
    with pytest.raises(Conflict):
        referral_link_create(campaign=campaign, actor=campaign.initiator, tag="newsletter")
    with pytest.raises(NotAllowed):
        referral_link_create(campaign=campaign, actor=UserFactory(), tag="mine")
    other = LiveCampaignFactory()
    referral_link_create(campaign=other, actor=other.initiator, tag="newsletter")


def test_the_report_page_makes_links_and_refuses_bad_tags_with_the_reason(client, campaign):
    client.force_login(campaign.initiator)
    url = f"/campaigns/{campaign.slug}/dashboard/referrals/"
    assert f'href="{url}"' in client.get(f"/campaigns/{campaign.slug}/dashboard/").content.decode()
    refused = client.post(url, {"tag": "x" * 10_000})
    assert refused.status_code == 400
    assert "at most 40 characters" in refused.content.decode()
    refused = client.post(url, {"tag": "<script>x</script>"})
    assert refused.status_code == 400
    assert "letters, digits" in refused.content.decode()
    assert "<script>x</script>" not in refused.content.decode()
    assert ReferralLink.objects.filter(campaign=campaign).count() == 2
    made = client.post(url, {"tag": "twitter-launch", "label": "Launch thread"})
    assert made.status_code == 302
    page = client.get(url).content.decode()
    assert f"http://testserver/campaigns/{campaign.slug}/?ref=twitter-launch" in page
    assert "<svg" not in page  # nothing recorded yet: no chart
    client.get(campaign.get_absolute_url() + "?ref=twitter-launch")
    page = client.get(url).content.decode()
    assert "<svg" in page
    assert 'data-tag="twitter-launch"' in page


def test_only_the_initiator_sees_the_report(client, campaign):
    client.force_login(UserFactory())
    assert client.get(f"/campaigns/{campaign.slug}/dashboard/referrals/").status_code == 404
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/referrals/").status_code == 404


def test_the_api_reports_every_source(client, campaign):
    client.get(campaign.get_absolute_url() + "?ref=newsletter")
    backer = UserFactory()
    client.force_login(backer)
    client.get(f"/pledges/new/{campaign.slug}/")
    pledge_held(campaign=campaign, backer=backer, amount=3_000)
    client.force_login(campaign.initiator)
    response = client.get(f"/api/v1/campaigns/{campaign.pk}/referrals/")
    assert response.status_code == 200
    data = response.json()
    assert data["attribution_window_days"] == 30
    sources = {(s["kind"], s["name"]): s for s in data["sources"]}
    assert sources[("tag", "newsletter")]["pledges"] == 1
    assert sources[("tag", "newsletter")]["amount"] == 3_000
    assert sources[("direct", "")]["pledges"] == 0
    assert Pledge.objects.count() == 1

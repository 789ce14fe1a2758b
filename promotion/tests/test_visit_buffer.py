"""Arrivals buffered in Redis on the request path and copied into the database by beat's task."""

import pytest
from django.core.cache import caches

from crowdfund_site.tests.limits import fresh_key_prefix, redis_cache_url, redis_reachable
from projects.tests.factories import LiveCampaignFactory
from promotion import visit_buffer
from promotion.models import ReferralVisit
from promotion.tasks import flush_referral_visits

REDIS_URL = redis_cache_url()

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_cache(settings):
    if REDIS_URL is None or not redis_reachable(REDIS_URL):
        pytest.skip("needs Redis: set CACHE_URL or CELERY_BROKER_URL to a redis:// URL")
    settings.CACHES = {
        "default": {
            "BACKEND": "crowdfund_site.cache.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": fresh_key_prefix(),
        }
    }
    yield caches["default"]
    visit_buffer._redis().delete(visit_buffer._buffer_key())


def test_without_redis_a_click_is_stored_at_once(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    campaign = LiveCampaignFactory()
    client.get(campaign.get_absolute_url() + "?ref=newsletter")
    assert ReferralVisit.objects.filter(tag="newsletter").count() == 1
    assert flush_referral_visits() == 0


def test_with_redis_clicks_wait_in_the_buffer_until_beat_copies_them_once(client, redis_cache):
    campaign = LiveCampaignFactory()
    for tag in ("newsletter", "newsletter", "podcast"):
        client.get(campaign.get_absolute_url() + f"?ref={tag}&utm_source=mail")
    assert not ReferralVisit.objects.exists()
    assert flush_referral_visits() == 3
    assert flush_referral_visits() == 0
    visits = ReferralVisit.objects.order_by("created_at", "id")
    assert [v.tag for v in visits] == ["newsletter", "newsletter", "podcast"]
    assert {v.utm_source for v in visits} == {"mail"}
    assert len({v.visitor for v in visits}) == 1


def test_a_flush_killed_before_its_trim_inserts_nothing_twice(client, redis_cache, monkeypatch):
    campaign = LiveCampaignFactory()
    client.get(campaign.get_absolute_url() + "?ref=newsletter")
    client.get(campaign.get_absolute_url() + "?ref=podcast")
    real = visit_buffer._redis

    class KilledBeforeTrim:
        def __init__(self, client):
            self.client = client

        def __getattr__(self, name):
            return getattr(self.client, name)

        def ltrim(self, *args):
            raise SystemExit("killed")

    monkeypatch.setattr(visit_buffer, "_redis", lambda: KilledBeforeTrim(real()))
    with pytest.raises(SystemExit):
        visit_buffer.referral_visits_flush()
    assert ReferralVisit.objects.count() == 2
    monkeypatch.setattr(visit_buffer, "_redis", real)
    assert visit_buffer.referral_visits_flush() == 2  # copied again, inserted once
    assert ReferralVisit.objects.count() == 2
    assert visit_buffer.referral_visits_flush() == 0


def test_one_flush_at_a_time(client, redis_cache):
    campaign = LiveCampaignFactory()
    client.get(campaign.get_absolute_url() + "?ref=newsletter")
    assert redis_cache.add(visit_buffer.FLUSH_LOCK_KEY, 1, 60)
    assert visit_buffer.referral_visits_flush() == 0
    redis_cache.delete(visit_buffer.FLUSH_LOCK_KEY)
    assert visit_buffer.referral_visits_flush() == 1

"""Public pool pages in the sitemap: running, ended and closed pools, each with its page and last change."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from matching.models import PoolMode
from matching.services import pool_close, pool_create
from matching.tests.factories import funded_pool, sponsor_create
from projects.tests.factories import CategoryFactory, LiveCampaignFactory
from promotion import sitemaps
from promotion.tests.test_seo import _body, _check_sitemap_protocol

pytestmark = pytest.mark.django_db


def _pool(name, *, days_from_now=(-1, 60), **kwargs):
    now = timezone.now()
    starts, ends = (now + timedelta(days=d) for d in days_from_now)
    return funded_pool(name=name, categories=[CategoryFactory()], starts_at=starts, ends_at=ends, **kwargs)


def _pool_locs(client):
    files = _check_sitemap_protocol(_body(client.get("/sitemap.xml")), root_name="sitemapindex", entry="sitemap")
    pool_files = [f for f in files if "/sitemap-pools-" in f["loc"]]
    entries = []
    for file in pool_files:
        part = client.get(urlsplit(file["loc"]).path)
        assert part.status_code == 200
        entries += _check_sitemap_protocol(_body(part), root_name="urlset", entry="url")
    return pool_files, entries


def test_the_sitemap_lists_running_ended_and_closed_pools_and_nothing_unfunded_or_to_come(client):
    running = _pool("City culture fund", mode=PoolMode.PRO_RATA)
    ended = _pool("Last spring fund", days_from_now=(-30, -1))
    closed = _pool("Closed fund", days_from_now=(-60, -31))
    pool_close(pool=closed, actor=closed.sponsor)
    upcoming = _pool("Next year fund", days_from_now=(10, 40))
    sponsor = sponsor_create()
    now = timezone.now()
    unfunded = pool_create(
        actor=sponsor,
        sponsor=sponsor,
        name="Promised fund",
        currency="USD",
        amount=50_000,
        mode=PoolMode.QUADRATIC,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        campaigns=[LiveCampaignFactory()],
    )

    pool_files, entries = _pool_locs(client)

    assert len(pool_files) == 1
    assert pool_files[0]["lastmod"] is not None
    by_loc = {e["loc"]: e["lastmod"] for e in entries}
    expected = {f"http://testserver{reverse('matching:pool_detail', args=[p.slug])}" for p in (running, ended, closed)}
    assert set(by_loc) == expected
    assert not any(p.slug in loc for p in (upcoming, unfunded) for loc in by_loc)
    # Every listed page answers; a closed pool's page last changed when it closed.
    for loc in by_loc:
        assert client.get(urlsplit(loc).path).status_code == 200
    closed.refresh_from_db()
    closed_loc = f"http://testserver{reverse('matching:pool_detail', args=[closed.slug])}"
    assert by_loc[closed_loc] == sitemaps._w3c(closed.closed_at)


def test_no_public_pool_means_no_pool_file(client):
    LiveCampaignFactory()  # the index lists the campaigns' file only
    _pool("Next year fund", days_from_now=(10, 40))
    pool_files, _entries = _pool_locs(client)
    assert pool_files == []
    assert client.get("/sitemap-pools-1.xml").status_code == 404


def test_pools_split_into_files_like_every_section(client, monkeypatch):
    monkeypatch.setattr(sitemaps, "URLS_PER_FILE", 2)
    monkeypatch.setattr(sitemaps, "CHUNK", 1)
    pools = [_pool(f"Fund {i}") for i in range(3)]
    pool_files, entries = _pool_locs(client)
    assert len(pool_files) == 2
    assert [e["loc"] for e in entries] == [
        f"http://testserver{reverse('matching:pool_detail', args=[p.slug])}" for p in sorted(pools, key=lambda p: p.pk)
    ]
    assert client.get("/sitemap-pools-3.xml").status_code == 404

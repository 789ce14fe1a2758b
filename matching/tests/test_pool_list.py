"""The public index of matching pools at /matching/ and its link in the site's footer."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from matching.models import PoolMode
from matching.services import pool_close
from matching.tests import factories
from matching.tests.factories import sponsor_create
from matching.tests.test_pages import paid_round  # noqa: F401 - fixture
from matching.views import POOLS_PER_PAGE
from projects.tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db

URL = "/matching/"


def funded_pool(name, **kwargs):
    return factories.funded_pool(name=name, categories=[CategoryFactory()], **kwargs)


def _ended_pool(name, **kwargs):
    now = timezone.now()
    return funded_pool(name, starts_at=now - timedelta(days=30), ends_at=now - timedelta(days=1), **kwargs)


def _upcoming_pool(name, **kwargs):
    now = timezone.now()
    return funded_pool(name, starts_at=now + timedelta(days=10), ends_at=now + timedelta(days=40), **kwargs)


def test_the_index_is_at_matching_and_the_footer_links_to_it(client):
    assert reverse("matching:pool_list") == URL
    home = client.get(reverse("projects:home")).content.decode()
    assert f'href="{URL}"' in home
    assert "Matching pools" in home


def test_running_pools_come_first_then_upcoming_then_ended_and_closed(client):
    # Made in the reverse order, so that "newest first" alone would put them the wrong way round.
    closed = _ended_pool("Closed fund")
    pool_close(pool=closed, actor=closed.sponsor)
    _ended_pool("Last spring fund")
    _upcoming_pool("Next year fund")
    running = funded_pool("City culture fund", mode=PoolMode.PRO_RATA)
    page = client.get(URL).content.decode()
    order = [page.index(name) for name in ("Running now", "City culture fund", "Starting soon", "Next year fund")]
    order += [page.index(name) for name in ("Ended", "Last spring fund", "Closed fund")]
    assert order == sorted(order)
    assert f'href="{reverse("matching:pool_detail", args=[running.slug])}"' in page
    assert "Pro rata" in page
    assert running.sponsor.public_name in page
    assert "$1,000.00" in page


def test_a_pool_shows_what_is_left_and_how_many_campaigns_it_matched(client, paid_round):  # noqa: F811
    pool, _round, _a, _b = paid_round
    page = client.get(URL).content.decode()
    assert pool.name in page
    assert "Campaigns matched" in page
    assert "$0.00" in page  # all of it went to the two campaigns


def test_an_unfunded_pool_is_not_listed(client):
    from matching.services import pool_create

    sponsor = sponsor_create()
    now = timezone.now()
    pool_create(
        actor=sponsor,
        sponsor=sponsor,
        name="Promised fund",
        currency="USD",
        amount=5_000,
        mode=PoolMode.QUADRATIC,
        starts_at=now,
        ends_at=now + timedelta(days=5),
        campaigns=(),
        categories=[CategoryFactory()],
    )
    page = client.get(URL).content.decode()
    assert "Promised fund" not in page
    assert "No matching pool yet." in page


def test_the_index_is_paginated_twenty_a_page(client):
    sponsor = sponsor_create()
    for n in range(POOLS_PER_PAGE + 1):
        _ended_pool(f"Fund number {n:02d}", sponsor=sponsor)
    first = client.get(URL).content.decode()
    assert first.count("Fund number") == POOLS_PER_PAGE
    assert "Page 1 of 2" in first
    assert 'href="?page=2"' in first
    second = client.get(URL, {"page": 2}).content.decode()
    assert second.count("Fund number") == 1
    assert "Fund number 00" in second  # the oldest last


def test_the_index_in_chinese(client):
    funded_pool("City culture fund")
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "配捐池" in page
    assert "进行中" in page
    assert "二次方配捐" in page


def test_many_pools_cost_the_page_no_more_queries_than_one(client, django_assert_num_queries):
    funded_pool("Fund number one")
    client.get(URL)  # warm whatever the first request caches (sessions, content types)
    with django_assert_num_queries(3) as one:
        client.get(URL)
    sponsor = sponsor_create()
    for n in range(POOLS_PER_PAGE + 4):
        (_ended_pool if n % 2 else funded_pool)(f"Fund number {n:02d}", sponsor=sponsor)
    with django_assert_num_queries(len(one.captured_queries)):
        response = client.get(URL)
    assert response.content.decode().count("Fund number") == POOLS_PER_PAGE

"""A hot campaign page turning stale in a rush: one request renders, the others keep the copy.

Real threads, each with its own database connection and cache client, as gunicorn's threads
and workers have; run on PostgreSQL with the Redis cache (``CACHE_URL``) for the production case.
"""

import threading
import time

import pytest
from django.db import connection
from django.test import Client

import projects.views
from crowdfund_site.tests.concurrency import run_together
from pledges.tests.factories import pledge_held
from projects.services import campaign_update_create
from projects.tests.factories import LiveCampaignFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: concurrent requests from threads, each with its own connection",
    ),
]

VISITORS = 8


@pytest.fixture
def renders(monkeypatch):
    """Count the campaign page renders; each takes a while, so the visitors' requests overlap it."""
    count = {"n": 0}
    lock = threading.Lock()
    real = projects.views._campaign_page_context

    def slow_context(*args, **kwargs):
        with lock:
            count["n"] += 1
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(projects.views, "_campaign_page_context", slow_context)
    return count


def _visit(url):
    return lambda: Client().get(url)


def test_visitors_at_a_stale_hot_page_cause_one_render_and_keep_getting_the_copy(settings, renders):
    settings.PAGE_CACHE_SECONDS, settings.PAGE_CACHE_MAX_SECONDS = 1, 60
    campaign = LiveCampaignFactory(goal=100_000)
    url = campaign.get_absolute_url()
    assert "$0.00" in Client().get(url).content.decode()
    pledge_held(campaign=campaign, amount=12_345)  # the figures move (autocommit: noted at once)
    time.sleep(1.05)  # the copy is now older than PAGE_CACHE_SECONDS while figures moved: stale
    renders["n"] = 0

    responses = run_together([_visit(url) for _ in range(VISITORS)])

    assert [response.status_code for response in responses] == [200] * VISITORS
    assert renders["n"] == 1
    pages = [response.content.decode() for response in responses]
    assert sum("$123.45" in page for page in pages) == 1  # the one that rendered
    assert sum("$0.00" in page for page in pages) == VISITORS - 1  # the others: the previous copy
    assert "$123.45" in Client().get(url).content.decode()  # the fresh copy, stored for everyone
    assert renders["n"] == 1


def test_a_copy_of_an_older_generation_is_never_served_even_while_another_request_renders(settings, renders):
    settings.PAGE_CACHE_SECONDS, settings.PAGE_CACHE_MAX_SECONDS = 1, 60
    campaign = LiveCampaignFactory(goal=100_000)
    url = campaign.get_absolute_url()
    Client().get(url)
    pledge_held(campaign=campaign, amount=12_345)
    campaign_update_create(campaign=campaign, actor=campaign.initiator, title="We ship in May", body="Details.")
    time.sleep(1.05)

    responses = run_together([_visit(url) for _ in range(VISITORS)])

    assert all("We ship in May" in response.content.decode() for response in responses)


def test_the_render_lock_is_released_when_the_render_fails(settings, monkeypatch):
    settings.PAGE_CACHE_SECONDS, settings.PAGE_CACHE_MAX_SECONDS = 1, 60
    campaign = LiveCampaignFactory(goal=100_000)
    url = campaign.get_absolute_url()
    Client().get(url)
    pledge_held(campaign=campaign, amount=12_345)
    time.sleep(1.05)
    real = projects.views._campaign_page_context

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(projects.views, "_campaign_page_context", broken)
    with pytest.raises(RuntimeError):
        Client().get(url)
    monkeypatch.setattr(projects.views, "_campaign_page_context", real)
    # The next visitor renders (the lock did not outlive the failed render) and sees the pledge.
    assert "$123.45" in Client().get(url).content.decode()

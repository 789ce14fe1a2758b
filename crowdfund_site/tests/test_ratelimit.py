"""The fixed-window counters every limit uses: exact under parallel hits, on the in-memory cache and Redis."""

import threading

import pytest
from django.core.cache import caches

from crowdfund_site.ratelimit import window_clear, window_hit, window_release
from crowdfund_site.tests.limits import fresh_key_prefix, redis_cache_url, redis_reachable

REDIS_URL = redis_cache_url()


@pytest.fixture(params=["locmem", "redis"])
def shared_cache(request, settings):
    """The default cache as each kind the site runs with: in memory (local) and Redis (production)."""
    if request.param == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    else:
        if REDIS_URL is None or not redis_reachable(REDIS_URL):
            pytest.skip("needs Redis: set CACHE_URL or CELERY_BROKER_URL to a redis:// URL")
        settings.CACHES = {
            "default": {
                "BACKEND": "crowdfund_site.cache.SharedClientRedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": fresh_key_prefix(),
            }
        }
    # Redis keys are left to expire: the prefix is this test's alone, and clearing would empty
    # the whole database, which other runs may share.
    return caches["default"]


def _hit_in_parallel(windows, *, threads: int, hits_each: int) -> list[list[int]]:
    barrier = threading.Barrier(threads)
    counts: list[list[int]] = [[] for _ in range(threads)]

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        for _ in range(hits_each):
            counts[index].append([c.count for c in window_hit(windows)])

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    return [hit for per_thread in counts for hit in per_thread]


def test_parallel_hits_each_get_a_different_count(shared_cache):
    hits = _hit_in_parallel([("a", 60), ("b", 60)], threads=16, hits_each=25)

    assert sorted(a for a, _ in hits) == list(range(1, 401))
    assert sorted(b for _, b in hits) == list(range(1, 401))


def test_a_window_starts_with_its_first_hit_and_is_not_extended(shared_cache):
    [first] = window_hit([("w", 30)])
    [second] = window_hit([("w", 30)])

    assert (first.count, second.count) == (1, 2)
    assert 29 < first.retry_after <= 30
    assert second.retry_after <= first.retry_after


def test_counters_have_their_own_windows(shared_cache):
    short, long = window_hit([("short", 5), ("long", 600)])
    assert short.retry_after <= 5 < 590 < long.retry_after


def test_a_released_hit_no_longer_counts_and_never_goes_below_zero(shared_cache):
    window_hit([("r", 60)])
    window_release(["r"])
    window_release(["r"])
    window_release(["never-hit"])
    assert window_hit([("r", 60)])[0].count == 1


def test_a_cleared_counter_starts_again(shared_cache):
    window_hit([("c", 60)])
    window_hit([("c", 60)])
    window_clear("c")
    assert window_hit([("c", 60)])[0].count == 1

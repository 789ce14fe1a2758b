"""The Redis cache production uses (CACHE_URL=redis://...), against a real Redis."""

import os
import threading
import uuid

import pytest

from crowdfund_site.cache import SharedClientRedisCache

REDIS_URL = os.environ.get("CELERY_BROKER_URL", "")
pytestmark = pytest.mark.skipif(
    not REDIS_URL.startswith("redis://"), reason="needs Redis: runs in the PostgreSQL + Redis run"
)


@pytest.fixture
def redis_cache():
    # The test broker's Redis database, under a prefix of its own: Celery's keys are untouched.
    cache = SharedClientRedisCache(REDIS_URL, {"KEY_PREFIX": f"test-cache-{uuid.uuid4().hex}"})
    yield cache
    cache.delete_many(["page", "generation", *(f"thread-{n}" for n in range(8))])


def test_values_round_trip_and_one_client_serves_every_call(redis_cache):
    redis_cache.set("page", ("v1", "text/html", b"<p>copy</p>"), 30)

    assert redis_cache.get_many(["page", "generation"]) == {"page": ("v1", "text/html", b"<p>copy</p>")}
    with pytest.raises(ValueError, match="not found"):
        redis_cache.incr("generation")  # what page_cache_invalidate relies on to start a number afresh
    redis_cache.set("generation", 7, None)
    assert redis_cache.incr("generation") == 8
    assert redis_cache._cache.get_client() is redis_cache._cache.get_client(write=True)


def test_threads_share_the_client_safely(redis_cache):
    errors = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                redis_cache.set(f"thread-{n}", i, 30)
                assert redis_cache.get(f"thread-{n}") == i
        except BaseException as error:  # reported in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert [redis_cache.get(f"thread-{n}") for n in range(8)] == [199] * 8


def test_incr_is_one_atomic_step_under_threads_and_keeps_the_expiry(redis_cache):
    redis_cache.set("generation", 100, 300)
    seen, errors = [], []

    def work() -> None:
        try:
            seen.extend(redis_cache.incr("generation") for _ in range(100))
        except BaseException as error:  # reported in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(seen) == list(range(101, 901))  # every increment counted once, each caller its own number
    assert redis_cache.incr("generation", 5) == 905
    client = redis_cache._cache.get_client()
    assert 0 < client.ttl(redis_cache.make_and_validate_key("generation")) <= 300

"""A Redis cache for the tests of the limits: the one CACHE_URL names, else one beside the broker.

CI's PostgreSQL run sets CELERY_BROKER_URL (database 15) but no CACHE_URL; its limits then use
database 14 of the same Redis, with a key prefix of their own per test so runs never share counters.
"""

import os
import uuid
from urllib.parse import urlsplit

REDIS_CACHE_DB = 14


def redis_cache_url() -> str | None:
    """Return a redis:// cache URL, or None when no Redis is configured."""
    url = os.environ.get("CACHE_URL", "")
    if not url.startswith("redis://"):
        broker = os.environ.get("CELERY_BROKER_URL", "")
        if not broker.startswith("redis://"):
            return None
        url = f"redis://{urlsplit(broker).netloc}/{REDIS_CACHE_DB}"
    return url


def fresh_key_prefix() -> str:
    """Return a cache key prefix no other test run uses (CACHE_KEY_PREFIX)."""
    return f"limits-test-{uuid.uuid4().hex[:12]}"


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False

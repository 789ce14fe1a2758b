"""Arrivals recorded on the request path in Redis, moved into the database by beat.

A tagged click must cost the page well under a millisecond (benchmarks/README.md, promotion),
which a database INSERT and its commit do not on a busy server. With the shared Redis cache
of production, a click is one RPUSH of its row onto a list; ``referral_visits_flush`` (beat,
every few seconds) copies the list's head into ``ReferralVisit`` rows and trims what it
copied. Each row carries a random ``key`` with a unique constraint, so a flush killed between
its INSERT and its trim inserts nothing twice when the next one copies the same head; one
flush runs at a time (a lock in the cache), so a trim never drops rows another has not copied.
Without Redis (the local default) the row is inserted at once.
"""

import json
from datetime import datetime

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction

from .models import ReferralVisit

BUFFER_KEY = "promotion:referral-visits"
FLUSH_LOCK_KEY = "promotion:referral-visits:flushing"
FLUSH_LOCK_SECONDS = 120
FLUSH_BATCH = 5_000
_FIELDS = [
    "key",
    "campaign_slug",
    "kind",
    "tag",
    "referrer_host",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "visitor",
    "user_id",
]


def _redis():
    """Return the redis-py client of the default cache, or None when it is not Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(BUFFER_KEY, write=True)


def _buffer_key() -> str:
    return caches["default"].make_key(BUFFER_KEY)


def referral_visit_buffer(*, visit: ReferralVisit) -> None:
    """Record ``visit``: onto the Redis list when the cache is Redis, else straight into the database."""
    client = _redis()
    if client is None:
        _insert_now(visit)
        return
    row = {name: getattr(visit, name) for name in _FIELDS}
    row["created_at"] = visit.created_at.isoformat()
    client.rpush(_buffer_key(), json.dumps(row, separators=(",", ":")))


def _insert_now(visit: ReferralVisit) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # An arrival is counted, not money: no need to wait for the WAL flush.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        visit.save(force_insert=True)


def referral_visits_flush(*, limit: int = 100_000) -> int:
    """Copy buffered arrivals into the database, oldest first; return how many were copied.

    Idempotent and safe to run from several workers at once (see the module's docstring).
    """
    client = _redis()
    if client is None or not caches["default"].add(FLUSH_LOCK_KEY, 1, FLUSH_LOCK_SECONDS):
        return 0
    copied = 0
    try:
        key = _buffer_key()
        while copied < limit:
            raw = client.lrange(key, 0, FLUSH_BATCH - 1)
            if not raw:
                break
            rows = []
            for item in raw:
                data = json.loads(item)
                data["created_at"] = datetime.fromisoformat(data["created_at"])
                rows.append(ReferralVisit(**data))
            ReferralVisit.objects.bulk_create(rows, ignore_conflicts=True)
            client.ltrim(key, len(raw), -1)
            copied += len(raw)
    finally:
        caches["default"].delete(FLUSH_LOCK_KEY)
    return copied

"""Fixed-window counters on the shared cache, exact under parallel requests.

Every limit of the site (API throttles, the log-in policy) counts hits here. A counter is
incremented first and judged after: the increment is atomic, so of any number of parallel
requests exactly ``limit`` see a count within the limit, whichever process serves them. A window
starts with its first hit and lasts ``seconds``; later hits never extend it.

On Redis (production and CI, ``CACHE_URL``) one Lua script increments every counter of a request,
starts the windows that are new and reads how long each has left: one round trip, atomic, and a
key can never be left without an expiry. Any other cache (the in-memory default of ``make run``
and the tests) uses ``add`` + ``incr``, which Django's in-memory cache runs under its lock.
"""

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

# KEYS: the counters; ARGV[i]: the window of KEYS[i] in milliseconds.
# Returns, per key, its count (this hit included) and the milliseconds its window has left.
_HIT_SCRIPT = """
local result = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local left = redis.call('PTTL', key)
  if left < 0 then
    left = tonumber(ARGV[i])
    redis.call('PEXPIRE', key, left)
  end
  result[2 * i - 1] = count
  result[2 * i] = left
end
return result
"""

# Gives one hit back to each counter that still exists, never below zero.
_RELEASE_SCRIPT = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
  end
end
return 0
"""


@dataclass(frozen=True)
class WindowCount:
    """A counter after one hit: how many hits its window has seen, and when the window ends."""

    count: int
    retry_after: float  # seconds until the window ends and the count starts again from zero


_scripts: dict = {}


def _redis_client(cache, key: str):
    """Return the redis-py client Django's Redis cache uses for ``key`` (None on other caches)."""
    if not isinstance(cache, RedisCache):
        return None
    return cache._cache.get_client(key, write=True)


def _script(client, source: str):
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = client.register_script(source)
    return script


def window_hit(windows: Sequence[tuple[str, int]]) -> list[WindowCount]:
    """Count one hit on each ``(key, seconds)`` counter; return the counts in the same order.

    Atomic per counter: parallel callers each get a different count. A counter that does not
    exist starts a window of ``seconds``. One cache round trip on Redis.
    """
    cache = caches["default"]
    keys = [cache.make_and_validate_key(key) for key, _ in windows]
    client = _redis_client(cache, keys[0]) if keys else None
    if client is not None:
        raw = _script(client, _HIT_SCRIPT)(keys=keys, args=[seconds * 1000 for _, seconds in windows], client=client)
        return [WindowCount(count=int(raw[2 * i]), retry_after=int(raw[2 * i + 1]) / 1000) for i in range(len(keys))]
    return [_local_hit(cache, key, seconds) for key, seconds in windows]


def _local_hit(cache, key: str, seconds: int) -> WindowCount:
    # The window's end is kept beside the count: the cache API cannot read a key's expiry.
    now = time.time()
    cache.add(f"{key}:ends", now + seconds, timeout=seconds)
    for _ in range(3):
        cache.add(key, 0, timeout=seconds)
        try:
            count = cache.incr(key)
        except ValueError:  # the window ended between add() and incr(): start the next one
            continue
        ends = cache.get(f"{key}:ends", now + seconds)
        return WindowCount(count=count, retry_after=max(ends - now, 0.0))
    raise RuntimeError(f"cache counter {key!r} keeps vanishing")


def window_release(keys: Sequence[str]) -> None:
    """Give one hit back to each counter (a hit that turned out not to count), never below zero."""
    cache = caches["default"]
    full_keys = [cache.make_and_validate_key(key) for key in keys]
    client = _redis_client(cache, full_keys[0]) if full_keys else None
    if client is not None:
        _script(client, _RELEASE_SCRIPT)(keys=full_keys, client=client)
        return
    for key in keys:
        try:
            if cache.decr(key) < 0:
                cache.incr(key)
        except ValueError:  # the window already ended
            pass


def window_clear(key: str) -> None:
    """Forget a counter: its next hit starts a new window."""
    caches["default"].delete(key)


def limit_key(*parts: str) -> str:
    """Return a cache key for a counter named by ``parts`` (hashed: addresses and names are free text)."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
    return f"limit:{parts[0]}:{digest}"


def client_address(request) -> str:
    """Return the address a request comes from, for per-address limits.

    Behind ``NUM_PROXIES`` proxies the address is the one the outermost of ours saw (from
    X-Forwarded-For); with none, REMOTE_ADDR. Every limit uses this one answer, so the API and the
    log-in form count the same client as the same address.
    """
    if request is None:
        return "unknown"
    remote_addr = request.META.get("REMOTE_ADDR") or "unknown"
    num_proxies = settings.NUM_PROXIES
    forwarded = request.headers.get("x-forwarded-for")
    if num_proxies == 0 or not forwarded:
        return remote_addr
    addresses = forwarded.split(",")
    return addresses[-min(num_proxies, len(addresses))].strip() or remote_addr


def minutes_left(retry_after: float) -> int:
    """Return ``retry_after`` seconds as whole minutes for a message (at least 1)."""
    return max(math.ceil(retry_after / 60), 1)

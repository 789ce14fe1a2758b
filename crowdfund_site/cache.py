"""Django's Redis cache, with one Redis client per connection pool and a one-round-trip ``incr``.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call, and
each one fills a table of about 170 response callbacks: a third of the time of a page served
from the page cache (``crowdfund_site/page_cache.py``). A ``redis.Redis`` is safe to share
between threads (each command borrows a connection from the pool), so one per pool is enough.

Django's ``incr`` asks whether the key exists, then increments it: two round trips, and a key
that expires between them comes back as 1 instead of "not found". Every held pledge bumps its
campaign page's figures with ``incr`` after commit (``page_cache_figures_changed``); here the
check and the increment are one Lua script, one round trip, atomic.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

# KEYS[1]: the counter; ARGV[1]: the delta. Returns the new value, or nil (no such key: unchanged).
_INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return nil
"""


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        self._incr_scripts = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client

    def incr(self, key, delta):
        client = self.get_client(key, write=True)
        script = self._incr_scripts.get(client)
        if script is None:
            script = self._incr_scripts[client] = client.register_script(_INCR_IF_EXISTS)
        value = script(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value


class SharedClientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient

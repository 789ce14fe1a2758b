"""Request throttles: per user (anonymous callers per address) and per client address, and for tokens.

Each throttle checks all its counters in one call to ``crowdfund_site.ratelimit.window_hit``:
atomic increments in fixed windows, so the limits hold under parallel requests from any number
of web processes sharing the cache (CACHE_URL), at one cache round trip per request on Redis.
DRF's ``SimpleRateThrottle`` reads a history and writes it back, which lets parallel requests
through, and would cost a round trip per throttle class.

Every request counts, refused ones included: a client past its limit waits for the window to
end, however often it asks. Rates are read on every request, so a changed setting (tests,
benchmarks) applies at once.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from crowdfund_site.ratelimit import client_address, limit_key, window_hit

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _rate(scope: str) -> tuple[int, int] | None:
    """Return (requests, seconds) of the rate set for ``scope`` ("600/min"), or None if unlimited."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
    if rate is None:
        return None
    count, period = rate.split("/")
    return int(count), _SECONDS[period[0]]


class _WindowThrottle(BaseThrottle):
    def counters(self, request) -> list[tuple[str, str]]:
        """Return the (scope, identity) counters this request is counted against."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        limits = []
        for scope, ident in self.counters(request):
            rate = _rate(scope)
            if rate is not None:
                limits.append((limit_key(f"throttle-{scope}", ident), *rate))
        self._wait = None
        if not limits:
            return True
        counts = window_hit([(key, seconds) for key, _, seconds in limits])
        over = [
            count.retry_after for count, (_, allowed, _) in zip(counts, limits, strict=True) if count.count > allowed
        ]
        if over:
            self._wait = max(over)
        return not over

    def wait(self) -> float | None:
        return self._wait


class ApiThrottle(_WindowThrottle):
    """Requests per signed-in user (anonymous callers: per address) and per client address."""

    def counters(self, request) -> list[tuple[str, str]]:
        address = client_address(request)
        signed_in = request.user and request.user.is_authenticated
        caller = f"user:{request.user.pk}" if signed_in else f"anon:{address}"
        return [("user", caller), ("ip", address)]


class AuthThrottle(_WindowThrottle):
    """Token requests (password guesses) per client address, and that address's overall limit."""

    def counters(self, request) -> list[tuple[str, str]]:
        address = client_address(request)
        return [("auth", address), ("ip", address)]

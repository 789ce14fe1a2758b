"""Request throttles: per user (anonymous callers per address), per client address, and for log-in.

DRF reads its rates into a class attribute at import; these read them on every request, so a
changed setting (tests, benchmarks) applies at once. Counters live in the default cache, which
production shares between web processes (CACHE_URL).
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class UserThrottle(_SettingsRateThrottle):
    """Requests per signed-in user; anonymous callers are counted per address."""

    scope = "user"

    def get_cache_key(self, request, view) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IPThrottle(_SettingsRateThrottle):
    """Requests per client address, whoever is signed in."""

    scope = "ip"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthThrottle(IPThrottle):
    """Token requests (password guesses) per client address."""

    scope = "auth"

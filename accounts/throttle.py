"""Rate limit for log-in attempts, kept in the shared cache so every web process sees it.

Failures are counted per (username, client address) and per client address alone, in a fixed
window that starts with the first failure. Past the limit, the password is not even checked
until the window ends, so guessing costs the attacker time and the account owner, trying
from elsewhere, is not locked out.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache


def _limits() -> tuple[int, int, int]:
    return (
        settings.LOGIN_FAILURES_PER_ACCOUNT,
        settings.LOGIN_FAILURES_PER_ADDRESS,
        settings.LOGIN_FAILURE_WINDOW_SECONDS,
    )


def _keys(*, username: str, address: str) -> tuple[str, str]:
    account = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()
    return f"login-failures:account:{account}", f"login-failures:address:{address}"


def login_is_blocked(*, username: str, address: str) -> bool:
    """Return True while this username from this address (or the address) is over its limit."""
    per_account, per_address, _ = _limits()
    account_key, address_key = _keys(username=username, address=address)
    counts = cache.get_many([account_key, address_key])
    return counts.get(account_key, 0) >= per_account or counts.get(address_key, 0) >= per_address


def login_failure_record(*, username: str, address: str) -> None:
    """Count one failed attempt against the username and the address."""
    _, _, window = _limits()
    for key in _keys(username=username, address=address):
        # add() starts the window; incr() never extends it.
        if not cache.add(key, 1, timeout=window):
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.add(key, 1, timeout=window)


def login_failures_clear(*, username: str, address: str) -> None:
    """Forget the failures of this username from this address after a successful log-in."""
    account_key, _ = _keys(username=username, address=address)
    cache.delete(account_key)

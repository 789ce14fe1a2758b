"""The log-in policy: one limit on password guesses for every way in (web form, admin, API token);
and the limit on password reset e-mails.

Failures are counted per (username, client address) and per client address alone, each in a
fixed window that starts with its first hit (settings LOGIN_FAILURES_*). Past either limit the
password is not even checked until the window ends, so guessing costs the attacker time, and the
account owner, trying from elsewhere, is not locked out.

``accounts.backends.LoginPolicyBackend`` applies it inside ``django.contrib.auth.authenticate``,
which every path that checks a password goes through. An attempt takes its place in the counters
before the password is checked (one atomic cache call, ``crowdfund_site.ratelimit``), so parallel
guesses cannot all slip in under the limit; a successful or refused attempt gives its place back.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crowdfund_site.ratelimit import limit_key, minutes_left, window_clear, window_hit, window_release

TOO_MANY_ATTEMPTS = _("Too many failed log-in attempts. Wait %(minutes)s minutes, or reset your password.")


class LoginBlocked(ValidationError):
    """Too many failed log-ins for this account from this address, or from this address.

    A ``ValidationError`` (as Django's own "inactive account" refusal), so any log-in form that
    calls ``authenticate`` shows it as its error; the API answers it with a 429.
    """

    def __init__(self, *, retry_after: float):
        super().__init__(TOO_MANY_ATTEMPTS, code="too_many_attempts", params={"minutes": minutes_left(retry_after)})
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoginAttempt:
    account_key: str
    address_key: str


def _keys(*, username: str, address: str) -> tuple[str, str]:
    return (
        limit_key("login-account", username.strip().lower(), address),
        limit_key("login-address", address),
    )


def login_attempt_start(*, username: str, address: str) -> LoginAttempt:
    """Count an attempt to log in as ``username`` from ``address`` before its password is checked.

    Raises ``LoginBlocked`` (and counts nothing) when the account from this address, or the
    address, is over its limit. Atomic: of parallel attempts, only as many as the limits leave
    get through.
    """
    account_key, address_key = _keys(username=username, address=address)
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    account, address_count = window_hit([(account_key, window), (address_key, window)])
    over = []
    if account.count > settings.LOGIN_FAILURES_PER_ACCOUNT:
        over.append((account_key, account))
    if address_count.count > settings.LOGIN_FAILURES_PER_ADDRESS:
        over.append((address_key, address_count))
    if over:
        # A refused attempt is no failure: give its place back where it was still within the limit.
        window_release([key for key in (account_key, address_key) if key not in {k for k, _ in over}])
        raise LoginBlocked(retry_after=max(count.retry_after for _, count in over))
    return LoginAttempt(account_key=account_key, address_key=address_key)


def login_attempt_finish(attempt: LoginAttempt, *, succeeded: bool) -> None:
    """Keep a failed attempt in the counts; after a success, forget the account's failures."""
    if succeeded:
        window_clear(attempt.account_key)
        window_release([attempt.address_key])


TOO_MANY_RESETS = _("Too many password reset requests. Wait %(minutes)s minutes and try again.")


class PasswordResetsBlocked(ValidationError):
    """Too many reset e-mails asked for this address, or from this client address."""

    def __init__(self, *, retry_after: float):
        super().__init__(TOO_MANY_RESETS, code="too_many_resets", params={"minutes": minutes_left(retry_after)})
        self.retry_after = retry_after


def password_reset_request_count(*, email: str, address: str) -> None:
    """Count one request for a password reset e-mail to ``email`` from ``address``.

    Raises ``PasswordResetsBlocked`` past PASSWORD_RESETS_PER_EMAIL per e-mail address or
    PASSWORD_RESETS_PER_ADDRESS per client address in PASSWORD_RESET_WINDOW_SECONDS, whether or not
    an account has that e-mail (so the answer tells nothing about accounts). Atomic, as the log-in
    policy: nobody can have a mailbox flooded, or the site send mail for them, by asking in parallel.
    """
    window = settings.PASSWORD_RESET_WINDOW_SECONDS
    email_key = limit_key("reset-email", email.strip().lower())
    address_key = limit_key("reset-address", address)
    per_email, per_address = window_hit([(email_key, window), (address_key, window)])
    over = [
        count.retry_after
        for count, allowed in (
            (per_email, settings.PASSWORD_RESETS_PER_EMAIL),
            (per_address, settings.PASSWORD_RESETS_PER_ADDRESS),
        )
        if count.count > allowed
    ]
    if over:
        raise PasswordResetsBlocked(retry_after=max(over))

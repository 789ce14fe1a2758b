"""The authentication backend: Django's model backend under the log-in policy (accounts/throttle.py)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from crowdfund_site.ratelimit import client_address

from .throttle import login_attempt_finish, login_attempt_start


class LoginPolicyBackend(ModelBackend):
    """Check a username and password only while the log-in policy allows another attempt.

    Every password check of the site goes through ``authenticate`` and so through here: the web
    log-in form, the admin's, and the API token endpoint share one count. Raises ``LoginBlocked``
    (out of ``authenticate``) when the account from this address, or the address, is over its limit.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        attempt = login_attempt_start(username=str(username), address=client_address(request))
        user = super().authenticate(request, username=username, password=password, **kwargs)
        login_attempt_finish(attempt, succeeded=user is not None)
        return user

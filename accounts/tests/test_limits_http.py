"""Every limit under real parallel load: gunicorn (several workers) on PostgreSQL with a Redis cache.

16 connections at once send more requests than a limit allows, from the same token, address or
account; exactly ``limit`` of them may get through, whichever worker serves them. The server
trusts one proxy (NUM_PROXIES=1), so each part of a test comes from an address of its own
(X-Forwarded-For) and starts from empty counters.
"""

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import global_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection
from rest_framework.authtoken.models import Token

from crowdfund_site.api.testing import current_database_url, gunicorn_serving
from crowdfund_site.tests.limits import fresh_key_prefix, redis_cache_url, redis_reachable

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: gunicorn's processes share the test database, which SQLite keeps in this process",
    ),
]

CONNECTIONS = 16
PASSWORD = "correct-horse-battery"
UNLIMITED = "1000000/min"


@pytest.fixture
def server_env(settings):
    """The environment of a gunicorn sharing this test's database and a Redis cache of its own."""
    # Passwords the server can check: it has the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    url = redis_cache_url()
    if url is None or not redis_reachable(url):
        pytest.skip("needs Redis: set CACHE_URL or CELERY_BROKER_URL to a redis:// URL")
    return {
        "DATABASE_URL": current_database_url(),
        "CACHE_URL": url,
        "CACHE_KEY_PREFIX": fresh_key_prefix(),
        "NUM_PROXIES": "1",
        "CONN_MAX_AGE": "0",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "API_THROTTLE_USER": UNLIMITED,
        "API_THROTTLE_IP": UNLIMITED,
        "API_THROTTLE_AUTH": UNLIMITED,
    }


def _request(url: str, *, data: bytes | None = None, headers: dict) -> tuple[int, str, dict]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - a local test server
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the redirect itself is the answer looked at


def _in_parallel(send, jobs: list) -> list:
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        return list(pool.map(send, jobs))


def _users(n: int, *, prefix: str) -> list:
    User = get_user_model()
    password = make_password(PASSWORD)
    return User.objects.bulk_create(
        [User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com", password=password) for i in range(n)]
    )


def _token_request(base: str, username: str, password: str, address: str) -> tuple[int, dict]:
    body = json.dumps({"username": username, "password": password}).encode()
    headers = {"Content-Type": "application/json", "X-Forwarded-For": address}
    status, text, _ = _request(f"{base}/api/v1/auth/token/", data=body, headers=headers)
    return status, json.loads(text)


def test_api_throttles_let_exactly_the_limit_through_from_16_connections(server_env):
    tokens = [Token.objects.create(user=user).key for user in _users(11, prefix="throttled")]
    env = {**server_env, "API_THROTTLE_USER": "40/min", "API_THROTTLE_IP": "60/min"}

    with gunicorn_serving(env=env, workers=3, threads=4) as base:

        def get(job: tuple[str, dict]) -> int:
            path, headers = job
            return _request(f"{base}{path}", headers=headers)[0]

        # One token, each request from another address: the per-user limit.
        one_token = [
            ("/api/v1/me/", {"Authorization": f"Token {tokens[0]}", "X-Forwarded-For": f"10.0.{i // 250}.{i % 250}"})
            for i in range(200)
        ]
        # Anonymous, all from one address: anonymous callers are limited per address.
        anonymous = [("/api/v1/categories/", {"X-Forwarded-For": "10.1.0.1"})] * 200
        # Ten users (20 requests each, under their own limit) from one address: the per-address limit.
        shared_address = [
            ("/api/v1/me/", {"Authorization": f"Token {token}", "X-Forwarded-For": "10.2.0.1"})
            for token in tokens[1:]
            for _ in range(20)
        ]

        per_user = _in_parallel(get, one_token)
        per_anonymous_address = _in_parallel(get, anonymous)
        per_address = _in_parallel(get, shared_address)

    assert (per_user.count(200), per_user.count(429)) == (40, 160)
    assert (per_anonymous_address.count(200), per_anonymous_address.count(429)) == (40, 160)
    assert (per_address.count(200), per_address.count(429)) == (60, 140)


def test_log_in_and_password_reset_limits_hold_on_every_path_from_16_connections(server_env):
    _users(1, prefix="ada")
    _users(1, prefix="bea")
    _users(48, prefix="guess")
    env = {
        **server_env,
        "LOGIN_FAILURES_PER_ACCOUNT": "5",
        "LOGIN_FAILURES_PER_ADDRESS": "12",
        "PASSWORD_RESETS_PER_EMAIL": "5",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    }

    with gunicorn_serving(env=env, workers=3, threads=4) as base:
        # 48 wrong passwords for one account through the token endpoint: 5 are checked.
        token_guesses = _in_parallel(lambda n: _token_request(base, "ada0", f"wrong-{n}", "10.3.0.1"), list(range(48)))
        right_password_after = _token_request(base, "ada0", PASSWORD, "10.3.0.1")
        from_elsewhere = _token_request(base, "ada0", PASSWORD, "10.3.0.9")

        # The same through the web form, with its CSRF token.
        _, page, headers = _request(f"{base}/accounts/login/", headers={"X-Forwarded-For": "10.4.0.1"})
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        cookie = re.search(r"csrftoken=([^;]+)", headers["Set-Cookie"]).group(1)

        def web_login(password: str) -> str:
            body = urllib.parse.urlencode({"username": "bea0", "password": password, "csrfmiddlewaretoken": csrf})
            form_headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={cookie}",
                "X-Forwarded-For": "10.4.0.1",
            }
            status, text, _ = _request(f"{base}/accounts/login/", data=body.encode(), headers=form_headers)
            assert status == 200, (status, text[:300])
            return "wrong" if "Please enter a correct username" in text else "blocked" if "Too many" in text else text

        web_guesses = _in_parallel(web_login, [f"wrong-{n}" for n in range(48)])
        web_right_password_after = web_login(PASSWORD)

        # 48 accounts guessed once each from one address: the per-address limit.
        address_guesses = _in_parallel(
            lambda n: _token_request(base, f"guess{n}", "wrong", "10.5.0.1"), list(range(48))
        )

        # 48 password reset e-mails asked for one address: 5 are sent.
        def reset(n: int) -> int:
            body = urllib.parse.urlencode({"email": "bea0@example.com", "csrfmiddlewaretoken": csrf}).encode()
            form_headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={cookie}",
                "X-Forwarded-For": f"10.6.0.{n}",
            }
            request = urllib.request.Request(f"{base}/accounts/password-reset/", data=body, headers=form_headers)  # noqa: S310
            try:
                return urllib.request.build_opener(_NoRedirect).open(request, timeout=120).status
            except urllib.error.HTTPError as answer:
                return answer.code

        resets = _in_parallel(reset, list(range(48)))

    token_statuses = [status for status, _ in token_guesses]
    assert (token_statuses.count(401), token_statuses.count(429)) == (5, 43)
    assert {body["code"] for status, body in token_guesses if status == 429} == {"too_many_attempts"}
    assert right_password_after[0] == 429
    assert right_password_after[1]["code"] == "too_many_attempts"
    assert from_elsewhere[0] == 200, from_elsewhere  # the password was right: only that address is blocked

    assert (web_guesses.count("wrong"), web_guesses.count("blocked")) == (5, 43)
    assert web_right_password_after == "blocked"

    address_statuses = [status for status, _ in address_guesses]
    assert (address_statuses.count(401), address_statuses.count(429)) == (12, 36)

    assert (resets.count(302), resets.count(200)) == (5, 43)  # sent (redirect to "sent") or refused

import os

import pytest
from hypothesis import HealthCheck, settings

# Property tests check what holds, not how fast: on a loaded 2-core CI machine Hypothesis's
# default 200 ms deadline per example fails tests whose properties all held.
settings.register_profile("crowdfund", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("crowdfund")

# Tests talk plain http to the servers they start (gunicorn, live_server), as `make run` does:
# settings' production defaults (DEBUG off) would redirect to https and mark cookies Secure.
# The environment reaches the processes tests start; the fixture below covers this one, whose
# settings pytest-django loaded before this file.
PLAIN_HTTP = {
    "SECURE_SSL_REDIRECT": False,
    "SECURE_HSTS_SECONDS": 0,
    "SESSION_COOKIE_SECURE": False,
    "CSRF_COOKIE_SECURE": False,
}
for _name, _value in PLAIN_HTTP.items():
    os.environ.setdefault(_name, str(int(_value)))


def pytest_collection_modifyitems(config, items):
    """Browser and worker-process tests are slow: `make test-quick` (-m "not slow") leaves them out."""
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("worker"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _plain_http():
    # Session-wide, so that it is on before live_server (session-scoped) builds its middleware.
    from pathlib import Path

    from django.conf import settings
    from django.test import override_settings

    # WhiteNoise serves collectstatic's folder, and warns on every start if it is missing;
    # production's collectstatic makes it, settings never do.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    with override_settings(**PLAIN_HTTP):
        yield


@pytest.fixture(autouse=True)
def _sandbox_gateway(settings):
    settings.PAYMENT_GATEWAY = "escrow.gateway.SandboxGateway"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Factories set a password on every user; the production hasher would take most of the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _pages_rendered_per_request(settings):
    # Most page tests change data and look at the page again at once, or count the queries of a
    # render: they need the page rendered, not a visitor's copy. The copies have their own tests
    # (crowdfund_site/tests/test_page_cache.py) and the end-to-end browser test keeps them on.
    settings.PAGE_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _language_reset():
    # A page request through the test client leaves its reader's language active in this thread
    # (LocaleMiddleware activates it; nothing deactivates it), so a later test would otherwise
    # read translated messages: the risk forecast's explanation came out in Chinese after the
    # i18n tests.
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True)
def _empty_cache():
    # The cache outlives a test's database transaction: a pool of live campaigns (or throttle
    # counters) cached by one test would leak rows of a rolled-back database into the next.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def backer(db):
    from accounts.tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def staff(db):
    from accounts.tests.factories import StaffFactory

    return StaffFactory()


@pytest.fixture
def live_campaign(db):
    """A live all-or-nothing USD campaign with a goal of $1,000.00 and 30 days to go."""
    from projects.tests.factories import LiveCampaignFactory

    return LiveCampaignFactory(goal=100_000)


@pytest.fixture
def celery_eager():
    """Run Celery tasks in-process, at once, for tests that follow a task chain end to end."""
    from crowdfund_site.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def browser(monkeypatch):
    """A headless Chromium (Debian's) for end-to-end tests against ``live_server``."""
    from playwright.sync_api import sync_playwright

    from crowdfund_site.tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PolicyCheckedBrowser

    # Playwright's sync API runs an event loop in this thread; the ORM calls a test makes
    # between browser steps are ordinary blocking calls, which Django must be told are fine.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        checked = PolicyCheckedBrowser(chromium)
        yield checked
        chromium.close()
    # Every page ran under the site's Content-Security-Policy: anything it refused is a bug.
    assert not checked.violations, "Content-Security-Policy violations:\n" + "\n".join(checked.violations)


@pytest.fixture(scope="session", autouse=True)
def _close_stray_test_database_sessions(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end sessions that worker or server processes started
    by the tests may have left behind (PostgreSQL refuses to drop a database in use)."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _media_in_a_temporary_folder(settings, tmp_path_factory):
    # Uploaded pictures go to a fresh folder per test, never to var/media/.
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))

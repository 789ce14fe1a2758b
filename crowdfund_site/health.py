"""Health check for load balancers and monitors: is the database and the broker reachable?

Also the two reference pages the HTTP benchmarks measure beside their own figures, through the
same gunicorn in the same run, so that budgets can be ratios that survive a noisy machine: the
cheapest Django page that reads a database row, and a page served from the page cache's copy.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

from .page_cache import cache_page_for_visitors


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def _broker_ok() -> bool:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    try:
        with Connection(settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


@never_cache
def healthz(request):
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    healthy = all(checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **{k: "ok" if v else "down" for k, v in checks.items()}},
        status=200 if healthy else 503,
    )


@never_cache
def reference_one_row(request):
    """The least a page reading the database can cost here: one indexed row, a few bytes back."""
    first = get_user_model().objects.order_by("pk").values_list("pk", flat=True).first()
    return HttpResponse(f"{first or 0}\n", content_type="text/plain")


@cache_page_for_visitors(lambda: "reference")
def reference_page_copy(request):
    """A page logged-out visitors get from the page cache's copy (after its first render)."""
    return HttpResponse("reference\n", content_type="text/plain")

"""Rendered pages kept for a few seconds for visitors who are not logged in.

A launch-day rush is mostly people who are not logged in opening the same campaign page and the
discover page. Rendering such a page costs several milliseconds of Django per request; serving a
copy rendered a moment ago costs a cache read. What the copy may get wrong, and for how long:

- Totals (raised, backers, rewards left) and "time left" may be up to ``PAGE_CACHE_SECONDS`` old
  for logged-out visitors. The pledge flow checks everything again, so a stale "Choose this
  reward" on a tier that just sold out ends in the pledge page's clear "sold out" message.
- Anything a person expects to see at once is not left to the timer: a status change (approved,
  live, succeeded, failed, cancelled, suspended), a new update or comment calls
  ``page_cache_invalidate`` for the campaign's page and the discover page after commit, and the
  next request renders afresh.

Logged-in people always get a page rendered for them (their pledges, their name, their forms),
and so does anyone with a message waiting to be shown ("You have been logged out").

The page's forms carry a CSRF token that must be the visitor's own: the stored copy holds a
placeholder where the token was, and each response gets the visitor's token put in.
"""

import hashlib
import re
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token

CSRF_PLACEHOLDER = b"@@csrf-token@@"
_CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def _generation_key(group: str) -> str:
    return f"page-generation:{group}"


def page_cache_invalidate(*groups: str) -> None:
    """Make the cached copies of the pages in ``groups`` stale, once the current transaction commits.

    Each group has a generation number stored beside the pages; a page is served from the cache
    only while the generation it was rendered under is still the current one. After commit, so
    a request running meanwhile cannot store the old state under the new generation.
    """

    def bump() -> None:
        for group in groups:
            try:
                cache.incr(_generation_key(group))
            except ValueError:
                # No generation stored (never set, or evicted): start from a number no earlier
                # copy can carry, so a copy from before the eviction is not taken as current.
                cache.set(_generation_key(group), time.time_ns(), None)

    transaction.on_commit(bump)


def campaign_page_group(slug: str) -> str:
    return f"campaign:{slug}"


DISCOVER_GROUP = "discover"


def _cacheable(request: HttpRequest) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and settings.PAGE_CACHE_SECONDS > 0
        and not request.user.is_authenticated
        and len(get_messages(request)) == 0
    )


def _page_key(request: HttpRequest, group: str) -> str:
    path = hashlib.blake2b(request.get_full_path().encode(), digest_size=16).hexdigest()
    return f"page:{group}:{getattr(request, 'LANGUAGE_CODE', settings.LANGUAGE_CODE)}:{path}"


def _stored_copy(response: HttpResponse) -> bytes:
    """Return the page with the CSRF token the rendering put in replaced by the placeholder."""
    content = response.content
    found = _CSRF_FIELD.search(content)
    if found:
        content = content.replace(found.group(1), CSRF_PLACEHOLDER)
    return content


def cache_page_for_visitors(group_of: Callable[..., str]):
    """Serve the decorated view's page to logged-out visitors from a short-lived shared copy.

    ``group_of`` receives the view's URL arguments and names the group the page belongs to, the
    unit ``page_cache_invalidate`` makes stale: ``lambda slug: campaign_page_group(slug)``.
    Only complete 200 responses are stored; the copy is per path, query string and language.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not _cacheable(request):
                return view(request, *args, **kwargs)
            group = group_of(*args, **kwargs)
            page_key, generation_key = _page_key(request, group), _generation_key(group)
            found = cache.get_many([page_key, generation_key])
            generation = found.get(generation_key, 0)
            stored = found.get(page_key)
            if stored is not None and stored[0] == generation:
                _, content_type, content = stored
                return HttpResponse(content.replace(CSRF_PLACEHOLDER, get_token(request).encode()), content_type)
            response = view(request, *args, **kwargs)
            if response.status_code == 200 and not response.streaming and not response.cookies:
                stored = (generation, response["Content-Type"], _stored_copy(response))
                cache.set(page_key, stored, settings.PAGE_CACHE_SECONDS)
            return response

        return wrapper

    return decorator

"""Rendered pages kept for visitors who are not logged in.

A launch-day rush is mostly people who are not logged in opening the same campaign page and the
discover page. Rendering such a page is a few queries and a template render per request; serving
a copy rendered earlier is one cache read (what each costs is in benchmarks/README.md, pages).
When a copy is served, and what it may get wrong:

- A copy is never older than ``PAGE_CACHE_MAX_SECONDS`` (60 by default): "time left" is at most
  that far behind. A live campaign's copy is not served past the campaign's deadline.
- Totals (raised, backers, rewards left) are at most ``PAGE_CACHE_SECONDS`` (10) behind. While
  no pledge on a campaign has been held, cancelled, refunded or changed since its page's copy
  was rendered, the copy is served up to the maximum age, so the many quiet campaigns of a rush
  are rendered about once a minute. Once their figures move (``page_cache_figures_changed``),
  the copy is served only until it is ``PAGE_CACHE_SECONDS`` old, so a campaign taking many
  pledges a second is still rendered at most once per that many seconds. A page without
  figures of its own (discover) is kept ``PAGE_CACHE_SECONDS``. The pledge flow checks
  everything again, so a stale "Choose this reward" on a tier that just sold out ends in the
  pledge page's clear "sold out" message.
- When a copy is past those ages but not past the maximum nor of an older generation (below),
  one request renders the page afresh while the others arriving meanwhile are still served that
  copy (a short lock taken with ``cache.add``, released when the fresh copy is stored), so a hot
  page turning stale in a rush costs one render, not one per request until a copy is stored.
  Such a copy is at most one render's time older than the ages above; a page with no usable copy
  at all (none yet, of an older generation, past the maximum or a deadline) is rendered by every
  request that asks for it.
- Anything a person expects to see at once is not left to the timer: a status change (approved,
  live, succeeded, failed, cancelled, suspended), a new update or comment calls
  ``page_cache_invalidate`` for the campaign's page and the discover page after commit, and the
  next request renders afresh: a copy of an older generation is never served, not even while
  another request renders.

Logged-in people always get a page rendered for them (their pledges, their name, their forms),
and so does anyone with a message waiting to be shown ("You have been logged out").

The page's forms carry a CSRF token that must be the visitor's own: the stored copy holds a
placeholder where the token was, and each response gets the visitor's token put in.
"""

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
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


def _figures_key(group: str) -> str:
    return f"page-figures:{group}"


def _bump(keys: list[str]) -> None:
    for key in keys:
        try:
            cache.incr(key)
        except ValueError:
            # No generation stored (never set, or evicted): start from a number no earlier
            # copy can carry, so a copy from before the eviction is not taken as current.
            cache.set(key, time.time_ns(), None)


def page_cache_invalidate(*groups: str) -> None:
    """Make the cached copies of the pages in ``groups`` stale, once the current transaction commits.

    Each group has a generation number stored beside the pages; a page is served from the cache
    only while the generation it was rendered under is still the current one. After commit, so
    a request running meanwhile cannot store the old state under the new generation.
    """
    # robust: the pledge or status change has committed; a cache that is down must not turn its
    # response into an error (the copies then simply age out).
    transaction.on_commit(lambda: _bump([_generation_key(group) for group in groups]), robust=True)


def page_cache_figures_changed(group: Callable[[], str | None]) -> None:
    """Note, once the current transaction commits, that the figures on a page moved (totals, counts).

    Copies of that page are then served only while younger than ``PAGE_CACHE_SECONDS``. The page's
    group is named by calling ``group`` after commit (None: no such page), so a caller does not
    have to read what names the page inside its transaction, and nothing is read with the cache off.
    """
    if settings.PAGE_CACHE_SECONDS <= 0:
        return

    def bump() -> None:
        name = group()
        if name is not None:
            _bump([_figures_key(name)])

    transaction.on_commit(bump, robust=True)


def page_cache_expires_at(response: HttpResponse, when) -> HttpResponse:
    """Mark a page as true only until ``when`` (an aware datetime): no copy of it is served after.

    A live campaign's page says "Back this project" until its deadline; its copy must not say so
    after it, even before the close task has changed the campaign's status.
    """
    response.page_cache_expires_at = when.timestamp()
    return response


def campaign_page_group(slug: str) -> str:
    return f"campaign:{slug}"


DISCOVER_GROUP = "discover"


@dataclass(frozen=True)
class _Copy:
    generation: int
    # The generation of the campaign's figures when the page was rendered (read before it was),
    # or None for a page without figures of its own.
    figures_generation: int | None
    rendered_at: float
    # When what the page says stops being true on its own (a deadline passes), or None.
    expires_at: float | None
    content_type: str
    content: bytes

    def freshness(self, *, generation: int, figures_generation: int | None, now: float) -> str:
        """Return FRESH (serve it), STALE (serve it while another request renders) or UNUSABLE."""
        if self.generation != generation or (self.expires_at is not None and now >= self.expires_at):
            return UNUSABLE
        age = now - self.rendered_at
        if age >= settings.PAGE_CACHE_MAX_SECONDS:
            return UNUSABLE
        if age < settings.PAGE_CACHE_SECONDS:
            return FRESH
        figures_unchanged = self.figures_generation is not None and self.figures_generation == figures_generation
        return FRESH if figures_unchanged else STALE


FRESH, STALE, UNUSABLE = "fresh", "stale", "unusable"

# How long one request may hold the right to render a stale page while others get the old copy:
# longer than a render takes, short enough that a request that died holding it (a killed worker)
# delays the fresh copy by only this much.
RENDER_LOCK_SECONDS = 5


def _lock_key(page_key: str) -> str:
    return f"page-render-lock:{page_key}"


def _cacheable(request: HttpRequest) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and settings.PAGE_CACHE_SECONDS > 0
        and not request.user.is_authenticated
        and len(get_messages(request)) == 0
    )


def _page_key(request: HttpRequest, group: str) -> str:
    path = hashlib.blake2b(request.get_full_path().encode(), digest_size=16).hexdigest()
    # "v2": copies are _Copy objects; a different prefix keeps older copies (tuples) from being read.
    return f"page-v2:{group}:{getattr(request, 'LANGUAGE_CODE', settings.LANGUAGE_CODE)}:{path}"


def _stored_content(response: HttpResponse) -> bytes:
    """Return the page with the CSRF token the rendering put in replaced by the placeholder."""
    content = response.content
    found = _CSRF_FIELD.search(content)
    if found:
        content = content.replace(found.group(1), CSRF_PLACEHOLDER)
    return content


def cache_page_for_visitors(group_of: Callable[..., str], *, shows_campaign_figures: bool = False):
    """Serve the decorated view's page to logged-out visitors from a shared copy.

    ``group_of`` receives the view's URL arguments and names the group the page belongs to, the
    unit ``page_cache_invalidate`` makes stale: ``lambda slug: campaign_page_group(slug)``.
    ``shows_campaign_figures`` says the group is one campaign's page, whose copy is kept while
    that campaign's figures stand still. Only complete 200 responses are stored; the copy is per
    path, query string and language.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not _cacheable(request):
                return view(request, *args, **kwargs)
            group = group_of(*args, **kwargs)
            page_key, generation_key, figures_key = _page_key(request, group), _generation_key(group), None
            keys = [page_key, generation_key]
            if shows_campaign_figures:
                figures_key = _figures_key(group)
                keys.append(figures_key)
            # One read for all three, before rendering: a pledge held while the page renders
            # then makes the new copy stale instead of being missed by it.
            found = cache.get_many(keys)
            generation = found.get(generation_key, 0)
            figures_generation = found.get(figures_key, 0) if figures_key else None
            copy: _Copy | None = found.get(page_key)
            state = UNUSABLE
            if copy is not None:
                state = copy.freshness(generation=generation, figures_generation=figures_generation, now=time.time())
            lock_key = None
            if state == STALE:
                # Only the request that takes the lock renders; the others keep getting the copy
                # until the fresh one is stored, instead of all rendering at once (a stampede).
                lock_key = _lock_key(page_key)
                if not cache.add(lock_key, 1, RENDER_LOCK_SECONDS):
                    state = FRESH
            if state == FRESH:
                content = copy.content.replace(CSRF_PLACEHOLDER, get_token(request).encode())
                return HttpResponse(content, copy.content_type)
            try:
                return _render_and_store(view, request, args, kwargs, page_key, generation, figures_generation)
            finally:
                if lock_key is not None:
                    cache.delete(lock_key)

        return wrapper

    return decorator


def _render_and_store(view, request, args, kwargs, page_key, generation, figures_generation) -> HttpResponse:
    rendered_at = time.time()
    response = view(request, *args, **kwargs)
    if response.status_code == 200 and not response.streaming and not response.cookies:
        copy = _Copy(
            generation=generation,
            figures_generation=figures_generation,
            rendered_at=rendered_at,
            expires_at=getattr(response, "page_cache_expires_at", None),
            content_type=response["Content-Type"],
            content=_stored_content(response),
        )
        cache.set(page_key, copy, settings.PAGE_CACHE_MAX_SECONDS)
    return response

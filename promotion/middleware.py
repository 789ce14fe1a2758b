"""Request hooks of the promotion app: referral tracking, ``?hl=`` languages, old slugs' 301s.

``ReferralMiddleware`` sits before the page cache (a view decorator today; a cache middleware
must come after this one in MIDDLEWARE), so a click is recorded whether the page is rendered
or served from a copy. A tagged or off-site arrival costs one Redis RPUSH
(``promotion.visit_buffer``), made once the response has been sent (when the WSGI server
closes it), and every other request a couple of dictionary reads (benchmarks/README.md,
promotion).
"""

import logging
import re
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponsePermanentRedirect
from django.utils import translation
from redis.exceptions import RedisError

from .models import (
    REFERRER_HOST_MAX_LENGTH,
    UTM_FIELDS,
    UTM_VALUE_MAX_LENGTH,
    CampaignSlugHistory,
    ReferralVisit,
    VisitKind,
    referral_tag_is_valid,
)
from .visit_buffer import referral_visit_buffer

logger = logging.getLogger(__name__)

VISITOR_COOKIE = "cf_visitor"
# Attribution window: a pledge counts for the last arrival within this many days before it.
ATTRIBUTION_DAYS = 30
_CAMPAIGN_PAGE = re.compile(r"^/campaigns/(?P<slug>[-a-zA-Z0-9_]+)/$")
_PLEDGE_FORM = re.compile(r"^/pledges/new/(?P<slug>[-a-zA-Z0-9_]+)/$")
_CAMPAIGN_PATH = re.compile(r"^/(?P<prefix>campaigns|embed)/(?P<slug>[-a-zA-Z0-9_]+)/(?P<rest>.*)$")


def _referrer_host(request) -> str:
    referrer = request.META.get("HTTP_REFERER")
    if not referrer:
        return ""
    try:
        host = (urlsplit(referrer).hostname or "")[:REFERRER_HOST_MAX_LENGTH]
    except ValueError:
        return ""
    own = request.get_host().split(":")[0] if host else ""
    return "" if host == own else host


def _record(visit: ReferralVisit) -> None:
    try:
        referral_visit_buffer(visit=visit)
    except (DatabaseError, RedisError):
        # A lost click must never cost the visitor their page.
        logger.exception("Referral visit not recorded")


class ReferralMiddleware:
    """Record arrivals with ``?ref=`` (or from another site) and signed-in pledge starts.

    A tag that is not a valid tag (too long, markup) records nothing; the page is served as
    usual. The visitor's id lives in a cookie for ``ATTRIBUTION_DAYS`` from their last arrival.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        visit = None
        if request.method == "GET":
            path = request.path_info
            if path.startswith("/campaigns/"):
                visit = self._arrival(request, path)
            elif path.startswith("/pledges/new/"):
                visit = self._pledge_start(request, path)
        response = self.get_response(request)
        if visit is not None and response.status_code == 200:
            # Written when the response is closed, which the WSGI server does after the page's
            # bytes are sent: the visitor does not wait for the write.
            response._resource_closers.append(lambda: _record(visit))
            response.set_cookie(
                VISITOR_COOKIE,
                visit.visitor,
                max_age=ATTRIBUTION_DAYS * 86_400,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response

    def _arrival(self, request, path: str):
        found = _CAMPAIGN_PAGE.match(path)
        if found is None:
            return None
        params = request.GET
        tag = params.get("ref", "")
        if tag and not referral_tag_is_valid(tag):
            return None
        host = "" if tag else _referrer_host(request)
        if not tag and not host:
            return None
        utm = {}
        for name in UTM_FIELDS:
            value = params.get(name, "")
            if value and len(value) <= UTM_VALUE_MAX_LENGTH and "<" not in value and ">" not in value:
                utm[name] = value
        user = request.user if request.user.is_authenticated else None
        return ReferralVisit(
            campaign_slug=found["slug"],
            kind=VisitKind.CLICK,
            tag=tag,
            referrer_host=host,
            visitor=self._visitor(request),
            user=user,
            **utm,
        )

    def _pledge_start(self, request, path: str):
        visitor = request.COOKIES.get(VISITOR_COOKIE)
        if not visitor or not request.user.is_authenticated:
            return None
        found = _PLEDGE_FORM.match(path)
        if found is None:
            return None
        return ReferralVisit(campaign_slug=found["slug"], kind=VisitKind.START, visitor=visitor[:32], user=request.user)

    @staticmethod
    def _visitor(request) -> str:
        visitor = request.COOKIES.get(VISITOR_COOKIE, "")
        return visitor[:32] if visitor.isalnum() and len(visitor) >= 16 else secrets.token_hex(16)


class LanguageFromQueryMiddleware:
    """Serve a page in the language ``?hl=`` names (``en``, ``zh-hans``): one URL per language.

    Search engines do not send cookies or Accept-Language the way people do; hreflang links need
    an address that always answers in one language. After LocaleMiddleware, which it overrides.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.languages = {code.lower() for code, _name in settings.LANGUAGES}

    def __call__(self, request):
        language = request.GET.get("hl")
        if language and language.lower() in self.languages:
            translation.activate(language.lower())
            request.LANGUAGE_CODE = language.lower()
        return self.get_response(request)


class OldSlugRedirectMiddleware:
    """Answer a campaign page that is 404 under an old slug with a 301 to the current slug."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 404 or request.method not in ("GET", "HEAD"):
            return response
        found = _CAMPAIGN_PATH.match(request.path_info)
        if found is None:
            return response
        current = (
            CampaignSlugHistory.objects.filter(slug=found["slug"]).values_list("campaign__slug", flat=True).first()
        )
        if current is None:
            return response
        location = f"/{found['prefix']}/{current}/{found['rest']}"
        query = request.META.get("QUERY_STRING", "")
        return HttpResponsePermanentRedirect(location + (f"?{query}" if query else ""))

"""Security headers Django has no setting for: Content-Security-Policy and Permissions-Policy.

(Referrer-Policy, HSTS and nosniff come from Django's SecurityMiddleware.) Both policies are the
same for every response, so each header is built once from settings when the middleware starts;
no page needs a nonce or a policy of its own. A response that sets a header keeps its own.
"""

from django.conf import settings


def content_security_policy(directives: dict[str, list[str]]) -> str:
    """Return the header value for ``{"default-src": ["'self'"], ...}``."""
    return "; ".join(f"{name} {' '.join(sources)}".strip() for name, sources in directives.items())


class SecurityHeadersMiddleware:
    """Send ``settings.CONTENT_SECURITY_POLICY`` and ``settings.PERMISSIONS_POLICY`` with every response."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.headers = {
            "Content-Security-Policy": content_security_policy(settings.CONTENT_SECURITY_POLICY),
            "Permissions-Policy": settings.PERMISSIONS_POLICY,
        }
        self.debug = settings.DEBUG

    def __call__(self, request):
        response = self.get_response(request)
        # Django's technical 404 and 500 pages (DEBUG only) are styled and scripted inline.
        debug_page = self.debug and response.status_code in (404, 500)
        for name, value in self.headers.items():
            if value and not (debug_page and name == "Content-Security-Policy"):
                response.headers.setdefault(name, value)
        return response

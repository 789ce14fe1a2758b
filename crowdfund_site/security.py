"""Response headers Django has no setting for: Permissions-Policy.

(Content-Security-Policy comes from django-csp, Referrer-Policy, HSTS and nosniff from Django's
SecurityMiddleware; all are configured in settings.)
"""

from django.conf import settings


class PermissionsPolicyMiddleware:
    """Send ``settings.PERMISSIONS_POLICY`` with every response that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.PERMISSIONS_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Permissions-Policy", self.policy)
        return response

import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from accounts.views import set_language

from .health import healthz, reference_one_row, reference_page_copy
from .media import media_serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("healthz/reference/row", reference_one_row, name="reference_one_row"),
    path("healthz/reference/copy", reference_page_copy, name="reference_page_copy"),
    # Django's switcher, wrapped so a signed-in user's choice is stored in their profile too.
    path("i18n/setlang/", set_language, name="set_language"),
    path("api/", include("crowdfund_site.api.urls")),
    path("accounts/", include("accounts.urls")),
    path("pledges/", include("pledges.urls")),
    path("campaigns/", include("pledges.dashboard_urls")),
    path("campaigns/", include("settlement.urls")),
    path("fulfilment/", include("fulfilment.urls")),
    path("loans/", include("lending.urls")),
    path("matching/", include("matching.urls")),
    # Before projects: sitemap.xml, robots.txt, share cards and other pages under /campaigns/<slug>/.
    path("", include("promotion.urls")),
    path("", include("projects.urls")),
]
if not settings.MEDIA_URL.startswith(("http://", "https://", "//")):
    # Answers only while SERVE_MEDIA is on (development); see crowdfund_site/media.py.
    media_prefix = re.escape(settings.MEDIA_URL.strip("/"))
    urlpatterns.insert(0, re_path(rf"^{media_prefix}/(?P<path>.*)$", media_serve, name="media"))

admin.site.site_header = "Crowdfund operations"
admin.site.site_title = "Crowdfund operations"
admin.site.index_title = "Review, money and audit"

# Under /api/ these answer in the API's error format; elsewhere with Django's pages.
handler400 = "crowdfund_site.api.errors.bad_request"
handler403 = "crowdfund_site.api.errors.permission_denied"
handler404 = "crowdfund_site.api.errors.page_not_found"
handler500 = "crowdfund_site.api.errors.server_error"

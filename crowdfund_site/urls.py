from django.contrib import admin
from django.urls import include, path

from accounts.views import set_language

from .health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Django's switcher, wrapped so a signed-in user's choice is stored in their profile too.
    path("i18n/setlang/", set_language, name="set_language"),
    path("api/", include("crowdfund_site.api.urls")),
    path("accounts/", include("accounts.urls")),
    path("pledges/", include("pledges.urls")),
    path("campaigns/", include("pledges.dashboard_urls")),
    path("loans/", include("lending.urls")),
    path("matching/", include("matching.urls")),
    # Before projects: sitemap.xml, robots.txt, share cards and other pages under /campaigns/<slug>/.
    path("", include("promotion.urls")),
    path("", include("projects.urls")),
]

admin.site.site_header = "Crowdfund operations"
admin.site.site_title = "Crowdfund operations"
admin.site.index_title = "Review, money and audit"

# Under /api/ these answer in the API's error format; elsewhere with Django's pages.
handler400 = "crowdfund_site.api.errors.bad_request"
handler403 = "crowdfund_site.api.errors.permission_denied"
handler404 = "crowdfund_site.api.errors.page_not_found"
handler500 = "crowdfund_site.api.errors.server_error"

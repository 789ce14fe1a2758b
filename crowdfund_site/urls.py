from django.contrib import admin
from django.urls import include, path

from .health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("crowdfund_site.api.urls")),
    path("accounts/", include("accounts.urls")),
    path("pledges/", include("pledges.urls")),
    path("campaigns/", include("pledges.dashboard_urls")),
    path("", include("projects.urls")),
]

admin.site.site_header = "Crowdfund operations"
admin.site.site_title = "Crowdfund operations"
admin.site.index_title = "Review, money and audit"

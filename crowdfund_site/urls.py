from django.contrib import admin
from django.urls import include, path

from .health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("projects.urls")),
]

admin.site.site_header = "Crowdfund operations"
admin.site.site_title = "Crowdfund operations"
admin.site.index_title = "Review, money and audit"

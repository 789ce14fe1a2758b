from django.urls import path

from . import views

app_name = "matching"

urlpatterns = [
    path("", views.pool_list, name="pool_list"),
    path("new/", views.pool_create, name="pool_create"),
    path("estimate/<slug:slug>/", views.match_estimate, name="match_estimate"),
    path("<slug:slug>/", views.pool_detail, name="pool_detail"),
    path("<slug:slug>/apply/", views.pool_apply, name="pool_apply"),
    path("<slug:slug>/dashboard/", views.pool_dashboard_view, name="pool_dashboard"),
    path("<slug:slug>/dashboard/logo/", views.pool_logo_upload, name="pool_logo_upload"),
    path("<slug:slug>/dashboard/leftover/", views.pool_leftover_choose, name="pool_leftover_choose"),
    path("<slug:slug>/rounds/<int:round_id>/<str:part>.csv", views.round_csv, name="round_csv"),
]

from django.urls import path

from . import dashboard

app_name = "dashboard"

urlpatterns = [
    path("<slug:slug>/dashboard/", dashboard.campaign_dashboard, name="campaign_dashboard"),
    path("<slug:slug>/dashboard/backers.csv", dashboard.campaign_backers_csv, name="campaign_backers_csv"),
    path("<slug:slug>/dashboard/pricing-advice/", dashboard.pricing_advice_apply_view, name="pricing_advice_apply"),
    path("<slug:slug>/cancel/", dashboard.campaign_cancel_view, name="campaign_cancel"),
]

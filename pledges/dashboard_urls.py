from django.urls import path

from . import dashboard, views_late

app_name = "dashboard"

urlpatterns = [
    path("<slug:slug>/dashboard/", dashboard.campaign_dashboard, name="campaign_dashboard"),
    path("<slug:slug>/dashboard/backers.csv", dashboard.campaign_backers_csv, name="campaign_backers_csv"),
    path("<slug:slug>/dashboard/pricing-advice/", dashboard.pricing_advice_apply_view, name="pricing_advice_apply"),
    path(
        "<slug:slug>/dashboard/pricing-advice/lower-tier/",
        dashboard.pricing_advice_add_tier_view,
        name="pricing_advice_add_tier",
    ),
    path(
        "<slug:slug>/dashboard/pricing-advice/lower-price/",
        dashboard.pricing_advice_lower_price_view,
        name="pricing_advice_lower_price",
    ),
    path(
        "<slug:slug>/dashboard/pricing-advice/extend/",
        dashboard.pricing_advice_extend_view,
        name="pricing_advice_extend",
    ),
    path("<slug:slug>/cancel/", dashboard.campaign_cancel_view, name="campaign_cancel"),
    path("<slug:slug>/dashboard/late-pledges/", views_late.late_offer_view, name="late_pledges"),
]

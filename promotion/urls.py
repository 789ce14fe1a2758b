from django.urls import path

from . import views

app_name = "promotion"

urlpatterns = [
    path("sitemap.xml", views.sitemap_index, name="sitemap_index"),
    path("sitemap-<slug:section>-<int:number>.xml", views.sitemap_section, name="sitemap_section"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    path("oembed", views.oembed, name="oembed"),
    path("embed/<slug:slug>/", views.embed, name="embed"),
    path("campaigns/<slug:slug>/share-card.jpg", views.share_card, name="share_card"),
    path("campaigns/<slug:slug>/updates/<int:pk>/", views.update_detail, name="update_detail"),
    path("campaigns/<slug:slug>/follow/", views.follow_toggle, name="follow"),
    path("campaigns/<slug:slug>/notify/<slug:kind>/", views.notice_toggle, name="notice"),
    path("campaigns/<slug:slug>/web-address/", views.campaign_web_address, name="campaign_web_address"),
    path("campaigns/<slug:slug>/dashboard/referrals/", views.referral_dashboard, name="referral_dashboard"),
]

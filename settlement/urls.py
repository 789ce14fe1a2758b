from django.urls import path

from . import views

app_name = "settlement"

urlpatterns = [
    path("<slug:slug>/money/", views.campaign_money_view, name="campaign_money"),
    path("<slug:slug>/money/ledger.csv", views.campaign_ledger_csv, name="campaign_ledger_csv"),
]

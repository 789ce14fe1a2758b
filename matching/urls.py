from django.urls import path

from . import views

app_name = "matching"

urlpatterns = [
    path("<slug:slug>/", views.pool_detail, name="pool_detail"),
]

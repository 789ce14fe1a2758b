from django.urls import path

from . import views, views_late

app_name = "pledges"

urlpatterns = [
    path("", views.pledge_list, name="list"),
    path("new/<slug:slug>/", views.pledge_create_view, name="create"),
    path("late/<slug:slug>/", views_late.late_pledge_create_view, name="late_create"),
    path("<int:pk>/", views.pledge_detail, name="detail"),
    path("<int:pk>/cancel/", views.pledge_cancel_view, name="cancel"),
    path("<int:pk>/reward/", views.pledge_change_reward_view, name="change_reward"),
    path("<int:pk>/amount/", views.pledge_change_amount_view, name="change_amount"),
    path("<int:pk>/manage/", views.pledge_change_amount_view, name="manage"),
]

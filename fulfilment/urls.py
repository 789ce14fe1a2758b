from django.urls import path

from . import views

app_name = "fulfilment"

urlpatterns = [
    path("pledges/<int:pledge_id>/received/", views.delivery_confirm_view, name="confirm"),
    path("pledges/<int:pledge_id>/report/", views.delivery_report_view, name="report"),
    path("pledges/<int:pledge_id>/survey/", views.survey_answer_view, name="survey_answer"),
    path("campaigns/<slug:slug>/survey/", views.survey_send_view, name="survey_send"),
    path("campaigns/<slug:slug>/survey/answers.csv", views.survey_answers_csv, name="survey_csv"),
    path("campaigns/<slug:slug>/deliveries/", views.campaign_deliveries, name="campaign_deliveries"),
    path("campaigns/<slug:slug>/deliveries/rewards/<int:tier_id>/ship/", views.tier_ship_view, name="ship"),
    path("campaigns/<slug:slug>/deliveries/reports/<int:report_id>/answer/", views.report_answer_view, name="answer"),
]

from django.urls import path

from . import views

app_name = "lending"

urlpatterns = [
    path("", views.loan_list, name="list"),
    path("withdraw/", views.withdraw, name="withdraw"),
    path("relend/", views.relend, name="relend"),
    path("lent/<int:loan_id>/", views.lent_loan, name="lent"),
    path("borrowed/<int:loan_id>/", views.borrowed_loan, name="borrowed"),
    path("borrowed/<int:loan_id>/autopay/", views.borrowed_loan_autopay, name="borrowed_autopay"),
    path("preview/<slug:slug>/", views.schedule_preview, name="schedule_preview"),
    path("statement/<int:year>.csv", views.loan_statement, name="statement"),
    path("profile/", views.lender_profile, name="profile"),
    path("consent/<slug:slug>/", views.lending_consent, name="consent"),
]

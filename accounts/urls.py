from django.urls import path

from . import avatar_views, views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("profile/", views.profile_edit, name="profile"),
    path("profile/picture/", avatar_views.avatar_upload, name="avatar_upload"),
    path("verify/resend/", views.email_verification_resend, name="email_verification_resend"),
    path("verify/<str:token>/", views.email_verify, name="email_verify"),
    path("email/", views.email_change, name="email_change"),
    path("password/", views.password_change, name="password_change"),
    path("delete/", views.account_delete, name="account_delete"),
    path("people/<str:username>/", views.creator_page, name="creator"),
]

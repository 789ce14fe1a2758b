from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views import i18n
from django.views.decorators.debug import sensitive_post_parameters

from crowdfund_site.ratelimit import client_address

from .forms import EmailPasswordResetForm, NewPasswordForm, ProfileForm, RateLimitedAuthenticationForm, SignupForm
from .services import user_create, user_set_preferred_language, user_update_profile
from .throttle import PasswordResetsBlocked, password_reset_request_count


def _safe_next(request) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def _language_cookie_set(response, language: str) -> None:
    """Make the site answer in ``language`` from the next request on, as Django's set_language does."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


@sensitive_post_parameters("password1", "password2")
def signup(request):
    if request.user.is_authenticated:
        return redirect(_safe_next(request) or "projects:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = user_create(
                username=data["username"],
                email=data["email"],
                password=data["password1"],
                display_name=data["display_name"],
                # Whoever signs up on the Chinese pages wants Chinese e-mails too.
                preferred_language=translation.get_language(),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(request, gettext("Welcome to Crowdfund, %(name)s!") % {"name": user.public_name})
            return redirect(_safe_next(request) or "projects:home")
    return render(request, "accounts/user_signup.html", {"form": form, "next": _safe_next(request) or ""})


class LoginView(auth_views.LoginView):
    template_name = "accounts/user_login.html"
    authentication_form = RateLimitedAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        """Log in, then show the site in the user's preferred language."""
        response = super().form_valid(form)
        _language_cookie_set(response, form.get_user().language)
        return response


class LogoutView(auth_views.LogoutView):
    """Log out on POST only (Django refuses GET), then say so."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, gettext("You are logged out."))
        return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    form_class = EmailPasswordResetForm
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        """Send the link, within the limits on reset e-mails (accounts/throttle.py)."""
        try:
            password_reset_request_count(email=form.cleaned_data["email"], address=client_address(self.request))
        except PasswordResetsBlocked as blocked:
            form.add_error(None, blocked)
            return self.form_invalid(form)
        # Links in e-mails use SITE_URL, as every other e-mail does, not whatever Host the request named.
        self.extra_email_context = {"site_url": settings.SITE_URL.rstrip("/")}
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    form_class = NewPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


@login_required
def profile_edit(request):
    user = request.user
    initial = {
        "display_name": user.display_name,
        "bio": user.bio,
        "preferred_language": user.preferred_language,
    }
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            user_update_profile(user=user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            # Say it in the language just chosen, which the next page is shown in.
            translation.activate(user.language)
            messages.success(request, gettext("Your profile is saved."))
            response = redirect("accounts:profile")
            _language_cookie_set(response, user.language)
            return response
    return render(request, "accounts/user_profile.html", {"form": form})


def set_language(request):
    """Django's language switcher, which also remembers the choice in a signed-in user's profile.

    POST only changes anything (with the CSRF token, as Django's own view); a language the site
    does not offer is ignored by both.
    """
    response = i18n.set_language(request)
    language = request.POST.get("language") if request.method == "POST" else None
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        user_set_preferred_language(user=request.user, language=language)
    return response

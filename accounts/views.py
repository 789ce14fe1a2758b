from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views import i18n
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.ratelimit import client_address
from projects.selectors import campaigns_backed_count, campaigns_of_creator_public, campaigns_of_initiator
from risk.tasks import enqueue_campaign_assessment

from .forms import (
    AccountDeleteForm,
    EmailChangeForm,
    EmailPasswordResetForm,
    NewPasswordForm,
    PasswordChangeForm,
    ProfileForm,
    RateLimitedAuthenticationForm,
    SignupForm,
)
from .models import User
from .services import (
    email_verification_send,
    user_change_email,
    user_change_password,
    user_create,
    user_delete,
    user_set_preferred_language,
    user_update_profile,
    user_verify_email,
)
from .throttle import LoginBlocked, PasswordResetsBlocked, password_reset_request_count

# The creator page lists this many of a person's campaigns, newest first.
CREATOR_PAGE_CAMPAIGNS = 30


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
            if email_verification_send(user=user):
                messages.info(request, gettext("We sent you a link to confirm your e-mail address."))
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


def email_verify(request, token: str):
    """The link from the verification e-mail: verify the address it was sent to, and say so.

    The campaigns its owner has in review are scored again, so the reviewer no longer sees
    "e-mail not verified" among their risk factors.
    """
    try:
        user = user_verify_email(token=token)
    except ApplicationError as error:
        return render(request, "accounts/email_verify.html", {"error": error.message}, status=400)
    _rescore_campaigns_in_review(user)
    return render(request, "accounts/email_verify.html", {"verified_user": user})


def _rescore_campaigns_in_review(user) -> None:
    for campaign_id in campaigns_of_initiator(user=user).filter(status="in_review").values_list("pk", flat=True):
        enqueue_campaign_assessment(campaign_id)


@login_required
@require_POST
def email_verification_resend(request):
    try:
        sent = email_verification_send(user=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if sent:
            messages.success(request, gettext("We sent a new link to %(email)s.") % {"email": request.user.email})
        else:
            messages.info(request, gettext("Your e-mail address is already verified."))
    return redirect("accounts:profile")


def _account_form_view(request, form_class, template: str, action):
    """Run one account settings form: show it, and on a valid POST call ``action(form.cleaned_data)``.

    ``action`` returns the response to send; a refusal (wrong password, too many attempts, a
    taken address) is shown on the form, and nothing is changed.
    """
    form = form_class(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            return action(form.cleaned_data)
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        except LoginBlocked as blocked:
            form.add_error(None, blocked)
    return render(request, template, {"form": form}, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password")
def email_change(request):
    def change(data):
        user_change_email(user=request.user, email=data["email"], password=data["password"], request=request)
        messages.success(
            request,
            gettext("E-mail changed. Open the link we sent to %(email)s to verify it.") % {"email": request.user.email},
        )
        return redirect("accounts:profile")

    return _account_form_view(request, EmailChangeForm, "accounts/email_change.html", change)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password", "new_password1", "new_password2")
def password_change(request):
    def change(data):
        user = user_change_password(
            user=request.user, old_password=data["password"], new_password=data["new_password1"], request=request
        )
        update_session_auth_hash(request, user)
        messages.success(request, gettext("Your password is changed."))
        return redirect("accounts:profile")

    return _account_form_view(request, PasswordChangeForm, "accounts/password_change.html", change)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password")
def account_delete(request):
    def delete(data):
        user_delete(user=request.user, password=data["password"], request=request)
        logout(request)
        messages.info(request, gettext("Your account is deleted. Thank you for having been part of Crowdfund."))
        return redirect("projects:home")

    return _account_form_view(request, AccountDeleteForm, "accounts/account_delete.html", delete)


def creator_page(request, username: str):
    """A person's public page: name, badge, bio, the campaigns they started, how many they backed."""
    person = User.objects.filter(username=username, is_active=True).first()
    if person is None:
        raise Http404("No such person")
    campaigns = list(campaigns_of_creator_public(creator=person, viewer=request.user)[:CREATOR_PAGE_CAMPAIGNS])
    context = {"person": person, "campaigns": campaigns, "backed_count": campaigns_backed_count(user=person)}
    return render(request, "accounts/creator_page.html", context)

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from crowdfund_site.bounds import field_max_length

from .models import BIO_MAX_LENGTH, User


class PlainLabelsMixin:
    """Labels without Django's trailing colon: the layout already sets them apart."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SignupForm(PlainLabelsMixin, forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=field_max_length(User, "username"),
        help_text=_("Letters, digits and @ . + - _ only. Shown in your profile address."),
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    email = forms.EmailField(
        label=_("E-mail"),
        max_length=field_max_length(User, "email"),
        help_text=_("We send receipts and password resets here."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    display_name = forms.CharField(
        label=_("Display name"),
        max_length=field_max_length(User, "display_name"),
        required=False,
        help_text=_("Optional: the name backers and initiators see."),
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not entirely numeric, not a common password."),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        User.username_validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("That username is taken."))
        return username

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"].strip())
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this e-mail address already exists. Log in instead?"))
        return email

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords differ."))
        elif password1:
            candidate = User(
                username=cleaned.get("username", ""),
                email=cleaned.get("email", ""),
                display_name=cleaned.get("display_name", ""),
            )
            try:
                password_validation.validate_password(password1, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class RateLimitedAuthenticationForm(PlainLabelsMixin, AuthenticationForm):
    """The usual log-in form. The log-in policy (accounts/throttle.py) is applied by the
    authentication backend, so this form, the admin's and the API share it; once too many
    attempts failed, ``authenticate`` raises ``LoginBlocked``, which the form shows as its error."""


class ProfileForm(PlainLabelsMixin, forms.Form):
    display_name = forms.CharField(
        label=_("Display name"),
        max_length=field_max_length(User, "display_name"),
        required=False,
        help_text=_("Shown instead of your username."),
    )
    bio = forms.CharField(
        label=_("About you"),
        required=False,
        max_length=BIO_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("A few words about you, shown on campaigns you start."),
    )
    preferred_language = forms.ChoiceField(choices=lambda: settings.LANGUAGES, label=_("Language"))


class EmailPasswordResetForm(PlainLabelsMixin, PasswordResetForm):
    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        # The link goes to the account's owner, who may read another language than the
        # person who typed the address.
        with translation.override(context["user"].language):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)


class NewPasswordForm(PlainLabelsMixin, SetPasswordForm):
    pass


class EmailChangeForm(PlainLabelsMixin, forms.Form):
    email = forms.EmailField(
        label=_("New e-mail"),
        max_length=field_max_length(User, "email"),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text=_("We send a link there; until you open it, the address is not verified."),
    )
    password = forms.CharField(
        label=_("Your password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class PasswordChangeForm(PlainLabelsMixin, forms.Form):
    password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password1 = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not entirely numeric, not a common password."),
    )
    new_password2 = forms.CharField(
        label=_("New password again"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_password1") and cleaned.get("new_password1") != cleaned.get("new_password2"):
            self.add_error("new_password2", _("The two passwords differ."))
        return cleaned


class AccountDeleteForm(PlainLabelsMixin, forms.Form):
    password = forms.CharField(
        label=_("Your password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    confirm = forms.BooleanField(
        label=_("I understand: my name, e-mail and profile are erased and I cannot log in again."), required=True
    )

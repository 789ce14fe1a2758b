"""Forms of the lending pages: the lender's declarations, the knowledge test, a consent, withdrawals and autopay."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import CURRENCY_CHOICES, parse_amount
from escrow.gateway import sandbox_card_token

from .services.investor_limits import KNOWLEDGE_TEST


def _amount_or_zero(text: str, currency: str) -> int:
    text = (text or "").strip()
    if text in {"", "0"}:
        return 0
    try:
        return parse_amount(text, currency)
    except InvalidInput as error:
        raise forms.ValidationError(error.message, code=error.code) from None


class LenderProfileForm(forms.Form):
    """What a lender declares for the investor limits, in one currency."""

    accredited = forms.BooleanField(
        required=False,
        label=_("I am an accredited (US) or sophisticated (EU) investor"),
        help_text=_("Such investors lend without the limits below; we may ask for proof."),
    )
    currency = forms.ChoiceField(label=_("Currency of the amounts"), choices=CURRENCY_CHOICES, initial="USD")
    annual_income = forms.CharField(
        label=_("Yearly income"), max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    net_worth = forms.CharField(
        label=_("Net worth (without your home)"), max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        currency = cleaned.get("currency")
        for name in ("annual_income", "net_worth"):
            if currency and name in cleaned:
                try:
                    cleaned[name] = _amount_or_zero(cleaned[name], currency)
                except forms.ValidationError as error:
                    self.add_error(name, error)
        return cleaned


class KnowledgeTestForm(forms.Form):
    """The entry knowledge test, one radio group per question."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        for key, (question, choices, _right) in KNOWLEDGE_TEST.items():
            self.fields[key] = forms.ChoiceField(
                label=question, choices=list(choices.items()), widget=forms.RadioSelect
            )


class LendingConsentForm(forms.Form):
    amount = forms.CharField(label=_("Amount"), max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    understood = forms.BooleanField(
        label=_("I understand that I can lose all the money I lend to this loan, and I want to lend it anyway.")
    )

    def __init__(self, *args, currency: str, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_amount(self) -> int:
        try:
            return parse_amount(self.cleaned_data["amount"], self.currency)
        except InvalidInput as error:
            raise forms.ValidationError(error.message, code=error.code) from None


class WithdrawalForm(forms.Form):
    """Withdraw from the lender's balance in one currency; the hidden key makes a double submit one withdrawal."""

    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, widget=forms.HiddenInput)
    amount = forms.CharField(label=_("Amount"), max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    idempotency_key = forms.CharField(max_length=255, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    @staticmethod
    def new_key() -> str:
        return f"web-{uuid.uuid4()}"

    def clean(self):
        cleaned = super().clean()
        if "currency" in cleaned and "amount" in cleaned:
            try:
                cleaned["amount"] = parse_amount(cleaned["amount"], cleaned["currency"])
            except InvalidInput as error:
                self.add_error("amount", error.message)
        return cleaned


class AutopayForm(forms.Form):
    """The card a borrower saves to be charged each installment on its due date."""

    card_number = forms.CharField(
        label=_("Card number"),
        max_length=23,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_card_number(self) -> str:
        """Return the payment token of the card typed (a sandbox test card)."""
        number = self.cleaned_data["card_number"].strip()
        if not number.replace(" ", "").replace("-", "").isdigit():
            raise forms.ValidationError(_("A card number has digits only."))
        token = sandbox_card_token(number)
        if token is None:
            raise forms.ValidationError(
                _("This is a test site: real cards are never charged. Use one of the test cards listed below.")
            )
        return token

"""The sponsor's pool form: it parses what a person types; ``pool_create_and_fund`` checks everything else.

Amounts are typed in major units ("5,000.00") and parsed in the chosen currency; the ratio is
typed as what 1.00 given brings ("1" for 1:1, "0.5" for 1:2). The rules (a pool above zero,
caps within the pool, dates in order, who may sponsor) are the service's, the same as for the
API, and its refusals are shown on the field they name.
"""

from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import CURRENCY_CHOICES, parse_amount
from escrow.gateway import sandbox_card_token
from projects.models import Category

from .allocation import DEFAULT_QUADRATIC_MINIMUM, RATIO_ONE_TO_ONE_BPS
from .models import POOL_DESCRIPTION_MAX_LENGTH, POOL_RATIO_MAX_BPS, Pool, PoolMode

_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
# The amount fields, parsed in the pool's currency, by the service's argument they fill.
# The service's argument a refusal names -> the form's field it shows on.
_SERVICE_FIELDS = {"ratio_bps": "ratio", "campaigns": "categories", "payment_token": "card_number"}
AMOUNT_FIELDS = ("amount", "per_contribution_cap", "per_backer_cap", "per_campaign_cap", "minimum_contribution")


def _amount_input(label, *, required: bool = False, help_text=""):
    return forms.CharField(
        label=label,
        required=required,
        max_length=24,
        help_text=help_text,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )


class PoolForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=Pool._meta.get_field("name").max_length)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        required=False,
        max_length=POOL_DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    currency = forms.ChoiceField(label=gettext_lazy("Currency"), choices=CURRENCY_CHOICES, initial="USD")
    amount = _amount_input(
        gettext_lazy("Amount you put in"), required=True, help_text=gettext_lazy("Charged to your card now.")
    )
    mode = forms.ChoiceField(label=gettext_lazy("How it is shared"), choices=PoolMode.choices)
    starts_at = forms.DateTimeField(label=gettext_lazy("Starts"), widget=_DATETIME)
    ends_at = forms.DateTimeField(label=gettext_lazy("Ends"), widget=_DATETIME)
    ratio = forms.CharField(
        label=gettext_lazy("Match per 1.00 given"),
        required=False,
        max_length=10,
        initial="1",
        help_text=gettext_lazy("Fixed ratio only: 1 doubles each gift, 0.5 adds half."),
    )
    per_contribution_cap = _amount_input(gettext_lazy("At most per contribution"))
    per_backer_cap = _amount_input(gettext_lazy("At most per backer per campaign"))
    per_campaign_cap = _amount_input(
        gettext_lazy("At most per campaign"), help_text=gettext_lazy("Quadratic: empty for a tenth of the pool.")
    )
    minimum_contribution = _amount_input(
        gettext_lazy("Smallest contribution that counts"),
        help_text=gettext_lazy("Quadratic only; empty for 1.00."),
    )
    categories = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Categories it matches"),
        required=False,
        queryset=Category.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
    )
    accepts_applications = forms.BooleanField(
        label=gettext_lazy("Campaigns may apply; staff accept or decline each"), required=False
    )
    card_number = forms.CharField(
        label=gettext_lazy("Card number"),
        max_length=30,
        help_text=gettext_lazy("A test site: use 4242 4242 4242 4242; no real card is charged."),
        widget=forms.TextInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric"}),
    )
    # Minted when the form is shown: sending the same form twice makes (and charges) one pool.
    idempotency_key = forms.CharField(max_length=255, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_ratio(self) -> int:
        text = (self.cleaned_data.get("ratio") or "").strip()
        if not text:
            return RATIO_ONE_TO_ONE_BPS
        try:
            bps = Decimal(text) * 10_000
        except InvalidOperation:
            raise forms.ValidationError(_("Write the ratio as a number, e.g. 1 or 0.5.")) from None
        if bps != bps.to_integral_value() or not 0 < bps <= POOL_RATIO_MAX_BPS:
            raise forms.ValidationError(_("The ratio is a number above 0 and at most 100, with up to 4 decimals."))
        return int(bps)

    def clean_card_number(self) -> str:
        token = sandbox_card_token(self.cleaned_data["card_number"])
        if token is None:
            raise forms.ValidationError(
                _("This is a test site: real cards are never charged. Use one of the test cards.")
            )
        return token

    def clean(self):
        cleaned = super().clean()
        currency = cleaned.get("currency")
        for name in AMOUNT_FIELDS:
            text = (cleaned.get(name) or "").strip()
            if not text:
                cleaned[name] = DEFAULT_QUADRATIC_MINIMUM if name == "minimum_contribution" else None
            elif currency:
                try:
                    cleaned[name] = parse_amount(text, currency)
                except InvalidInput as error:
                    self.add_error(name, error.message)
        return cleaned

    def pool_fields(self) -> dict:
        """Return the cleaned values as ``pool_create``'s keyword arguments (with ``payment_token``)."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "currency": data["currency"],
            "amount": data["amount"],
            "mode": data["mode"],
            "starts_at": data["starts_at"],
            "ends_at": data["ends_at"],
            "ratio_bps": data["ratio"],
            "per_contribution_cap": data["per_contribution_cap"],
            "per_backer_cap": data["per_backer_cap"],
            "per_campaign_cap": data["per_campaign_cap"],
            "minimum_contribution": data["minimum_contribution"],
            "categories": list(data["categories"]),
            "accepts_applications": data["accepts_applications"],
        }

    def show_error(self, error) -> None:
        """Show a service refusal on the field it names, or above the form."""
        field = _SERVICE_FIELDS.get(error.field, error.field)
        self.add_error(field if field in self.fields else None, error.message)


class StaffPoolForm(PoolForm):
    """The pool form staff fill in the admin on a sponsor's behalf: the same fields, and whose pool it is."""

    sponsor = forms.CharField(
        label=gettext_lazy("Sponsor's username"),
        max_length=150,
        help_text=gettext_lazy("A member of the Sponsors group; the card is theirs, charged now."),
    )
    field_order = ["sponsor"]

import functools
import re
import uuid

from django import forms
from django.conf import settings
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import currency_exponent, format_amount, parse_amount
from escrow.gateway import sandbox_card_token
from projects.models import REWARD_QUANTITY_LIMIT_MAX
from projects.services import MAX_DURATION_DAYS
from projects.shipping import COUNTRIES

EXPIRY = re.compile(r"(0[1-9]|1[0-2])\s*/\s*([0-9]{2})")


# From this many whole units of any currency (or for an amount written with a thousands
# separator) the form shows the amount it understood and charges only once the backer confirms it.
CONFIRM_FROM_UNITS = 1_000


def new_idempotency_key() -> str:
    return f"web-{uuid.uuid4()}"


def amount_as_text(minor: int, currency: str) -> str:
    """Return minor units as a plain number to prefill an amount field: 2500 USD -> "25.00"."""
    exponent = currency_exponent(currency)
    if exponent == 0:
        return str(minor)
    return f"{minor // 10**exponent}.{minor % 10**exponent:0{exponent}d}"


@functools.cache
def _countries_by_name(language: str | None) -> tuple[tuple[str, str], ...]:
    """Every country (code, name in ``language``, the one active), sorted by name: once per language."""
    return tuple(sorted(((code, str(name)) for code, name in COUNTRIES.items()), key=lambda item: item[1]))


class LongSelect(forms.Select):
    """A select of hundreds of options written in one pass, without a template per option.

    The same HTML as Django's ``Select`` for flat string choices; Django's renders each option
    through a template, which made the country list three quarters of the pledge form's CPU, on
    every form shown and every refusal shown again (sold out in a rush; benchmarks/README.md).
    """

    def render(self, name, value, attrs=None, renderer=None):
        selected = "" if value is None else str(value[0] if isinstance(value, list | tuple) else value)
        options = format_html_join(
            "\n",
            '<option value="{}"{}>{}</option>',
            ((code, " selected" if str(code) == selected else "", label) for code, label in self.choices),
        )
        return format_html(
            '<select name="{}"{}>\n{}\n</select>', name, flatatt(self.build_attrs(self.attrs, attrs)), options
        )


class AmountConfirmationMixin:
    """An amount form that asks the backer to confirm a large or thousands-separated amount first.

    "1,500" is fifteen hundred here, where a European backer may have meant one and a half: so
    the form shows "You are pledging $1,500.00" and charges only when ``confirmed_amount`` (a
    hidden field the confirmation sends back) holds that very amount in minor units.
    """

    currency: str

    def amount_to_confirm(self) -> str | None:
        """Return the valid amount as understood ("$1,500.00") if it still needs confirming, else None."""
        amount = self.cleaned_data.get("amount")
        if amount is None:
            return None
        typed = str(self.data.get(self.add_prefix("amount"), ""))
        large = amount >= CONFIRM_FROM_UNITS * 10 ** currency_exponent(self.currency)
        if not ("," in typed or large) or self.cleaned_data.get("confirmed_amount") == str(amount):
            return None
        return format_amount(amount, self.currency)


class AddOnFieldsMixin:
    """Quantity fields ``addon_<id>`` for a campaign's add-ons, read back as ``cleaned_data["addons"]``.

    Each takes any whole number: what a pledge may carry (0 to ADDONS_MAX_PER_BACKER of an add-on
    of this campaign) is the pledge services' rule, whose refusal the view shows on the form.
    """

    def add_addon_fields(self, addons, initial: dict[int, int] | None = None) -> None:
        self.addons = list(addons)
        self.addons_max = settings.ADDONS_MAX_PER_BACKER
        for addon in self.addons:
            self.fields[f"addon_{addon.pk}"] = forms.IntegerField(
                label=addon.title,
                required=False,
                initial=(initial or {}).get(addon.pk, 0),
                widget=forms.NumberInput(
                    attrs={"min": 0, "max": settings.ADDONS_MAX_PER_BACKER, "data-addon-price": addon.price}
                ),
            )

    def addon_fields(self):
        """(add-on, its bound field) pairs, for the template."""
        return [(addon, self[f"addon_{addon.pk}"]) for addon in self.addons]

    def clean_addons(self, cleaned: dict, *, keep_zero: bool) -> None:
        quantities = {addon.pk: cleaned.get(f"addon_{addon.pk}") or 0 for addon in self.addons}
        cleaned["addons"] = {pk: q for pk, q in quantities.items() if q or keep_zero}


class PledgeForm(AddOnFieldsMixin, AmountConfirmationMixin, forms.Form):
    """A pledge to one campaign: optional reward, amount in its currency, a sandbox test card.

    ``idempotency_key`` is a hidden value minted when the form is shown; submitting the same
    form twice sends the same key, and the pledge service then makes one pledge.
    """

    reward = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    amount = forms.CharField(max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    # Asked for when the chosen reward ships; the pledge service checks that it ships there.
    shipping_country = forms.ChoiceField(label=gettext_lazy("Ship to"), required=False, widget=LongSelect)
    card_number = forms.CharField(
        label=gettext_lazy("Card number"),
        max_length=30,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "cc-number",
                "inputmode": "numeric",
                "data-card-number": "",
                "placeholder": "4242 4242 4242 4242",
            }
        ),
    )
    expiry = forms.CharField(
        label=gettext_lazy("Expiry"),
        max_length=7,
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "placeholder": "MM/YY"}),
    )
    cvc = forms.CharField(
        label=gettext_lazy("CVC"),
        max_length=4,
        widget=forms.TextInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric", "placeholder": "123"}),
    )
    idempotency_key = forms.CharField(max_length=255, widget=forms.HiddenInput)
    confirmed_amount = forms.CharField(required=False, max_length=24, widget=forms.HiddenInput)
    # Loans only, for a lender with a balance: the checkbox's value is the balance offered when the
    # page was shown (minor units), so a form sent twice asks for the same split both times.
    pay_from_balance = forms.IntegerField(required=False, min_value=1, max_value=settings.PLEDGE_MAX_MINOR)
    # Pay in 3 monthly installments (the pledge service checks the minimum and what may be).
    pay_over_time = forms.BooleanField(required=False)

    def __init__(self, *args, campaign, rewards, prices=None, balance_available: int = 0, addons=(), **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.add_addon_fields(addons)
        self.balance_available = balance_available
        if balance_available or self.data.get(self.add_prefix("pay_from_balance")):
            # The balance may pay it all: a card is then asked for in ``clean`` only for the rest.
            for name in ("card_number", "expiry", "cvc"):
                self.fields[name].required = False
        # A stepped tier's price as quoted to this form (projects.pricing), by reward id.
        self.prices = prices or {}
        self.campaign = campaign
        self.currency = campaign.currency
        self.rewards = {r.pk: r for r in rewards}
        self.fields["reward"].choices = [("", _("No reward"))] + [(r.pk, r.title) for r in rewards]
        self.fields["amount"].label = _("Pledge amount (%(currency)s)") % {"currency": campaign.currency}
        countries = _countries_by_name(get_language())
        self.fields["shipping_country"].choices = [("", _("Choose a country")), *countries]

    def clean_amount(self) -> int:
        try:
            return parse_amount(
                self.cleaned_data["amount"], self.campaign.currency, max_minor=settings.PLEDGE_MAX_MINOR
            )
        except InvalidInput as error:
            raise forms.ValidationError(error.message, code=error.code) from None

    def clean_card_number(self) -> str:
        if not self.cleaned_data["card_number"].strip() and not self.fields["card_number"].required:
            return ""
        digits = re.sub(r"[\s-]", "", self.cleaned_data["card_number"])
        if not digits.isdigit():
            raise forms.ValidationError(_("A card number has digits only."))
        token = sandbox_card_token(digits)
        if token is None:
            raise forms.ValidationError(
                _("This is a test site: real cards are never charged. Use one of the test cards listed below.")
            )
        return token

    def clean_expiry(self) -> str:
        if not self.cleaned_data["expiry"].strip() and not self.fields["expiry"].required:
            return ""
        match = EXPIRY.fullmatch(self.cleaned_data["expiry"].strip())
        if not match:
            raise forms.ValidationError(_("Write the expiry date as MM/YY, e.g. 12/30."))
        month, year = int(match.group(1)), 2000 + int(match.group(2))
        today = timezone.localdate()
        if (year, month) < (today.year, today.month):
            raise forms.ValidationError(_("This card has expired."))
        return f"{month:02d}/{year % 100:02d}"

    def clean_cvc(self) -> str:
        cvc = self.cleaned_data["cvc"].strip()
        if not cvc and not self.fields["cvc"].required:
            return ""
        if not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise forms.ValidationError(_("The CVC is the 3 or 4 digits on the back of the card."))
        return cvc

    def clean(self):
        cleaned = super().clean()
        self.clean_addons(cleaned, keep_zero=False)
        reward_id, amount = cleaned.get("reward"), cleaned.get("amount")
        reward = self.rewards.get(reward_id) if reward_id is not None else None
        cleaned["reward_tier"] = reward
        offered = cleaned.get("pay_from_balance") or 0
        cleaned["from_balance"] = min(offered, amount) if amount is not None else 0
        if amount is not None and amount > cleaned["from_balance"]:
            for name in ("card_number", "expiry", "cvc"):
                if name in cleaned and not cleaned[name]:
                    message = (
                        _("Your balance pays %(part)s: enter a card for the other %(rest)s.")
                        % {
                            "part": format_amount(cleaned["from_balance"], self.currency),
                            "rest": format_amount(amount - cleaned["from_balance"], self.currency),
                        }
                        if cleaned["from_balance"]
                        else _("This field is required.")
                    )
                    self.add_error(name, message)
        if reward is not None and reward.ships and not cleaned.get("shipping_country"):
            self.add_error(
                "shipping_country",
                _("The “%(reward)s” reward is shipped: choose the country to ship it to.") % {"reward": reward.title},
            )
        price = self.prices.get(reward_id, reward.minimum_amount) if reward is not None else 0
        if reward is not None and amount is not None and amount < price:
            minimum = format_amount(price, self.campaign.currency)
            self.add_error(
                "amount",
                _("The “%(reward)s” reward needs a pledge of at least %(minimum)s.")
                % {"reward": reward.title, "minimum": minimum},
            )
        return cleaned


class PledgeCancelForm(forms.Form):
    """Nothing to fill in: the POST itself, with its CSRF token, is the confirmation."""


class PledgeRewardForm(forms.Form):
    """Another reward for a held pledge: one the amount already covers, or none."""

    reward = forms.TypedChoiceField(label=gettext_lazy("Reward"), coerce=int, empty_value=None, required=False)

    def __init__(self, *args, rewards, pledge, **kwargs):
        super().__init__(*args, **kwargs)
        self.pledge = pledge
        self.rewards = {reward.pk: reward for reward in rewards}
        choices = [("", _("No reward, just support the project"))]
        for reward in rewards:
            choices.append((reward.pk, _reward_choice_label(reward, pledge)))
        self.fields["reward"].choices = choices
        self.initial.setdefault("reward", pledge.reward_id or "")

    def clean_reward(self):
        reward_id = self.cleaned_data["reward"]
        reward = None if reward_id is None else self.rewards[reward_id]
        if reward_id != self.pledge.reward_id and _moves_shipping(reward, self.pledge):
            # This page moves no money; shipping to or from a reward does, on "Manage your pledge".
            title = reward.title if reward is not None else _("No reward")
            raise forms.ValidationError(
                _(
                    "“%(reward)s” changes your shipping: choose it under “Manage your pledge”, where you pick "
                    "the country and see the shipping before anything is charged or refunded."
                )
                % {"reward": title}
            )
        if reward is not None and self.pledge.needs_more_for(reward):
            minimum = format_amount(reward.minimum_amount, self.pledge.currency)
            raise forms.ValidationError(
                _("“%(reward)s” needs a pledge of at least %(minimum)s: change the amount and the reward together.")
                % {"reward": reward.title, "minimum": minimum}
            )
        return reward


def _moves_shipping(reward, pledge) -> bool:
    """Whether moving ``pledge`` to ``reward`` (None: no reward) may change its shipping."""
    return (reward is not None and reward.ships) or bool(pledge.shipping_country)


def _reward_choice_label(reward, pledge, *, with_shipping: bool = False) -> str:
    minimum = format_amount(reward.minimum_amount, pledge.currency)
    label = _("%(reward)s (%(minimum)s or more)") % {"reward": reward.title, "minimum": minimum}
    if not with_shipping and reward.pk != pledge.reward_id and _moves_shipping(reward, pledge):
        # Said here, before submitting: the change of reward page moves no money, shipping does.
        return _("%(reward)s — ships: choose it under Manage your pledge") % {"reward": label}
    if with_shipping and reward.ships and reward.pk != pledge.reward_id:
        label = _("%(reward)s — ships, shipping added") % {"reward": label}
    if reward.sold_out and reward.pk != pledge.reward_id:
        return _("%(reward)s — sold out") % {"reward": label}
    if pledge.needs_more_for(reward):
        # Said before submitting, with the amount it takes, instead of failing after.
        return _("%(reward)s — raise your pledge to %(minimum)s") % {"reward": label, "minimum": minimum}
    return label


class PledgeAmountForm(AddOnFieldsMixin, AmountConfirmationMixin, forms.Form):
    """Manage a held pledge: a new amount, reward and/or add-ons, and the sandbox card for a higher whole.

    ``amount`` is the pledge without its add-ons (``Pledge.amount_without_addons``), which come on top.

    Only the difference moves: more is charged to this card, less is refunded to the card(s)
    charged, so the card is asked for only when the amount goes up. ``idempotency_key`` works as
    in ``PledgeForm``: the same form sent twice makes one change.
    """

    amount = forms.CharField(max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    reward = forms.TypedChoiceField(label=gettext_lazy("Reward"), coerce=int, empty_value=None, required=False)
    # Where a reward that ships goes; the change service quotes its shipping there.
    shipping_country = forms.ChoiceField(label=gettext_lazy("Ship to"), required=False, widget=LongSelect)
    card_number = forms.CharField(required=False, max_length=30, widget=PledgeForm.base_fields["card_number"].widget)
    expiry = forms.CharField(required=False, max_length=5, widget=PledgeForm.base_fields["expiry"].widget)
    cvc = forms.CharField(required=False, max_length=4, widget=PledgeForm.base_fields["cvc"].widget)
    idempotency_key = forms.CharField(max_length=255, widget=forms.HiddenInput)
    confirmed_amount = PledgeForm.base_fields["confirmed_amount"]

    def __init__(self, *args, pledge, rewards=(), addons=(), addon_quantities=None, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.add_addon_fields(addons, initial=addon_quantities)
        self.addon_quantities = addon_quantities or {}
        self.pledge = pledge
        self.currency = pledge.currency
        self.rewards = {reward.pk: reward for reward in rewards}
        self.fields["amount"].label = _("New pledge amount (%(currency)s)") % {"currency": pledge.currency}
        self.fields["reward"].choices = [("", _("No reward, just support the project"))] + [
            (reward.pk, _reward_choice_label(reward, pledge, with_shipping=True)) for reward in rewards
        ]
        self.initial.setdefault("reward", pledge.reward_id or "")
        countries = _countries_by_name(get_language())
        self.fields["shipping_country"].choices = [("", _("Choose a country")), *countries]
        self.initial.setdefault("shipping_country", pledge.shipping_country)
        self.fields["card_number"].label = _("Card number")
        self.fields["expiry"].label = _("Expiry")
        self.fields["cvc"].label = _("CVC")

    def clean_card_number(self) -> str:
        return PledgeForm.clean_card_number(self) if self.cleaned_data["card_number"].strip() else ""

    def clean_expiry(self) -> str:
        return PledgeForm.clean_expiry(self) if self.cleaned_data["expiry"].strip() else ""

    def clean_cvc(self) -> str:
        return PledgeForm.clean_cvc(self) if self.cleaned_data["cvc"].strip() else ""

    def clean_amount(self) -> int:
        try:
            return parse_amount(self.cleaned_data["amount"], self.pledge.currency, max_minor=settings.PLEDGE_MAX_MINOR)
        except InvalidInput as error:
            raise forms.ValidationError(error.message, code=error.code) from None

    def clean_reward(self):
        reward_id = self.cleaned_data["reward"]
        return None if reward_id is None else self.rewards[reward_id]

    def clean(self):
        cleaned = super().clean()
        self.clean_addons(cleaned, keep_zero=True)
        # Only the add-ons whose quantity moved go to the service (none: the add-ons stay).
        cleaned["addons"] = {
            pk: q for pk, q in cleaned["addons"].items() if q != self.addon_quantities.get(pk, 0)
        } or None
        amount, reward = cleaned.get("amount"), cleaned.get("reward")
        if amount is None or "reward" not in cleaned:
            return cleaned
        country = cleaned.get("shipping_country") or self.pledge.shipping_country
        if reward is not None and reward.ships and not country:
            self.add_error(
                "shipping_country",
                _("The “%(reward)s” reward is shipped: choose the country to ship it to.") % {"reward": reward.title},
            )
        elif (
            amount == self.pledge.amount_without_addons
            and (reward.pk if reward else None) == self.pledge.reward_id
            and country == self.pledge.shipping_country
            and cleaned["addons"] is None
        ):
            self.add_error(
                "amount",
                _("Your pledge is already %(amount)s with this reward. Change the amount or the reward.")
                % {"amount": self.pledge.amount_display},
            )
        elif reward is not None and amount < reward.minimum_amount:
            self.add_error(
                "amount",
                _("The “%(reward)s” reward needs a pledge of at least %(minimum)s.")
                % {"reward": reward.title, "minimum": format_amount(reward.minimum_amount, self.pledge.currency)},
            )
        elif amount + self._addons_total(cleaned["addons"]) > self.pledge.amount:
            for name in ("card_number", "expiry", "cvc"):
                if name not in self.errors and not cleaned.get(name):
                    self.add_error(name, _("Enter the card that pays the difference."))
        return cleaned

    def _addons_total(self, changed: dict[int, int] | None) -> int:
        """What the add-ons cost after the change, at the prices shown (the service prices them again)."""
        if changed is None:
            return self.pledge.addons_amount
        quantities = {**self.addon_quantities, **changed}
        prices = {addon.pk: addon.price for addon in self.addons}
        return sum(max(q, 0) * prices.get(pk, 0) for pk, q in quantities.items())


class _AdviceForm(forms.Form):
    """A pricing suggestion of the dashboard, as suggested or as the initiator changed it; a price in ``currency``."""

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_price(self) -> int:
        try:
            return parse_amount(self.cleaned_data["price"], self.currency)
        except InvalidInput as error:
            raise forms.ValidationError(error.message, code=error.code) from None


# A reward's id, bounded like every integer a form takes (a larger one names no reward).
def _reward_field() -> forms.IntegerField:
    return forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**31 - 1)


class PriceStepAdviceForm(_AdviceForm):
    """The dashboard's "open a next price step" advice."""

    reward = _reward_field()
    price = forms.CharField(label=gettext_lazy("Price of the next step"), max_length=40)
    slots = forms.IntegerField(
        label=gettext_lazy("Slots at that price"), min_value=1, max_value=REWARD_QUANTITY_LIMIT_MAX
    )


class LowerTierAdviceForm(_AdviceForm):
    """The dashboard's "add a lower-priced tier" advice."""

    title = forms.CharField(label=gettext_lazy("Title of the new tier"), max_length=120)
    price = forms.CharField(label=gettext_lazy("Its price"), max_length=40)


class LowerPriceAdviceForm(_AdviceForm):
    """The dashboard's "lower the price of a tier nobody takes" advice."""

    reward = _reward_field()
    price = forms.CharField(label=gettext_lazy("New price for new backers"), max_length=40)


class ExtendDeadlineAdviceForm(forms.Form):
    """The dashboard's "extend the deadline once" advice (the service checks the most days allowed)."""

    days = forms.IntegerField(label=gettext_lazy("Days later"), min_value=1, max_value=MAX_DURATION_DAYS)

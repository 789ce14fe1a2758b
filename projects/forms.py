import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crowdfund_site.bounds import field_max_length
from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.images import ACCEPT_ATTRIBUTE
from crowdfund_site.money import CURRENCY_CHOICES, parse_amount
from lending.models import RepaymentType
from lending.services import loan_terms_validate

from .models import (
    ADDON_DESCRIPTION_MAX_LENGTH,
    ADDON_TITLE_MAX_LENGTH,
    CAMPAIGN_FAQ_MAX_LENGTH,
    CAMPAIGN_RISKS_MAX_LENGTH,
    CAMPAIGN_STORY_MAX_LENGTH,
    COMMENT_MAX_LENGTH,
    IMAGE_ALT_MAX_LENGTH,
    MAX_DELIVERY_HOLDBACK_BPS,
    OFFERED_FUNDING_MODELS,
    REWARD_DESCRIPTION_MAX_LENGTH,
    REWARD_QUANTITY_LIMIT_MAX,
    SEARCH_QUERY_MAX_LENGTH,
    STRETCH_GOAL_DESCRIPTION_MAX_LENGTH,
    STRETCH_GOAL_TITLE_MAX_LENGTH,
    UPDATE_BODY_MAX_LENGTH,
    Campaign,
    CampaignUpdate,
    Category,
    FundingModel,
    RewardTier,
)
from .selectors import DiscoverSort
from .services import MAX_DURATION_DAYS, MIN_DURATION_DAYS

# The discover page's sort labels, in the reader's language.
SORT_LABELS = {
    DiscoverSort.RELEVANCE: _("Best match"),
    DiscoverSort.ENDING: _("Ending soonest"),
    DiscoverSort.NEWEST: _("Newest"),
    # xgettext:no-python-format
    DiscoverSort.MOST_FUNDED: _("Most funded (% of goal)"),
    DiscoverSort.MOST_BACKED: _("Most backers"),
}


class DiscoverForm(forms.Form):
    """The discover page's search, category and sort; bad values fall back to the defaults."""

    q = forms.CharField(
        required=False,
        max_length=SEARCH_QUERY_MAX_LENGTH,
        label=_("Search"),
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Board games, cameras, gardens…")}),
    )
    category = forms.ChoiceField(label=_("Category"), required=False)
    sort = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[(value, SORT_LABELS.get(value, label)) for value, label in DiscoverSort.CHOICES],
    )

    def __init__(self, *args, categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.categories = {c.slug: c for c in categories}
        self.fields["category"].choices = [("", gettext("All categories"))] + [
            (c.slug, c.display_name) for c in categories
        ]

    def filters(self) -> dict:
        """Return query, category object and sort from the valid part of the input."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "query": data.get("q") or "",
            "category": self.categories.get(data.get("category") or ""),
            "sort": data.get("sort") or "",
        }


class PlainLabelsForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def _parse_money(text: str, currency: str) -> int:
    try:
        return parse_amount(text, currency)
    except InvalidInput as error:
        raise forms.ValidationError(error.message, code=error.code) from None


class CategoryChoiceField(forms.ModelChoiceField):
    """Categories by their name in the reader's language."""

    def label_from_instance(self, obj: Category) -> str:
        return obj.display_name


class CampaignBasicsForm(PlainLabelsForm):
    """Step 1: what it is and how much it needs."""

    title = forms.CharField(
        label=_("Title"),
        max_length=field_max_length(Campaign, "title"),
        help_text=_("Short and clear, e.g. “Tiny Dungeon: a pocket roguelike”."),
    )
    summary = forms.CharField(
        label=_("Summary"),
        max_length=field_max_length(Campaign, "summary"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One or two sentences shown on cards and in search results."),
    )
    category = CategoryChoiceField(
        label=_("Category"), queryset=Category.objects.order_by("name"), empty_label=_("Choose a category")
    )
    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES, initial="USD")
    goal = forms.CharField(
        label=_("Funding goal"),
        max_length=24,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "5000.00"}),
        help_text=_("In the currency above, e.g. 5000 or 5000.00."),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("goal") and cleaned.get("currency"):
            try:
                cleaned["goal"] = _parse_money(cleaned["goal"], cleaned["currency"])
            except forms.ValidationError as error:
                self.add_error("goal", error)
        return cleaned


class CampaignStoryForm(PlainLabelsForm):
    """Step 2: the story backers read, questions and answers, and the risks (Markdown each)."""

    description = forms.CharField(
        label=_("Story"),
        max_length=CAMPAIGN_STORY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 14, "data-markdown-preview": ""}),
        help_text=_("What you are making, who you are and what the money pays for."),
    )
    faq = forms.CharField(
        label=_("Questions and answers"),
        required=False,
        max_length=CAMPAIGN_FAQ_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6, "data-markdown-preview": ""}),
        help_text=_("Optional: what backers will ask, with your answers."),
    )
    risks = forms.CharField(
        label=_("Risks and challenges"),
        required=False,
        max_length=CAMPAIGN_RISKS_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6, "data-markdown-preview": ""}),
        help_text=_("Required before you submit: what could go wrong, and how you will deal with it."),
    )


class CampaignFundingForm(PlainLabelsForm):
    """Step 3: how the money is settled and when the campaign runs."""

    funding_model = forms.ChoiceField(
        label=_("Funding model"),
        choices=[(model.value, model.label) for model in OFFERED_FUNDING_MODELS],
        widget=forms.RadioSelect,
        help_text=_(
            "All or nothing: backers are refunded if the goal is missed. Flexible: you keep what is raised. "
            "Debt: backers lend, all or nothing, and you repay them with interest on the terms below."
        ),
    )
    duration_days = forms.IntegerField(
        label=_("Duration (days)"),
        min_value=MIN_DURATION_DAYS,
        max_value=MAX_DURATION_DAYS,
        help_text=_("From launch to deadline, 1 to 60 days."),
    )
    launch_on_approval = forms.BooleanField(
        required=False,
        label=_("Go live as soon as a reviewer approves"),
        help_text=_("Otherwise you launch it yourself."),
    )
    # Whole percent on the page, basis points on the campaign (``campaign_fields``).
    delivery_holdback_percent = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_DELIVERY_HOLDBACK_BPS // 100,
        label=_("Delivery holdback (%)"),
        help_text=_(
            "Share of reward pledges kept in escrow until backers receive their rewards, "
            "then released to you as they confirm. 0 keeps none; empty takes the platform's default."
        ),
    )
    # A debt campaign's loan terms (lending's LoanTerms), fixed once it is submitted for review.
    loan_rate = forms.CharField(
        required=False,
        max_length=8,
        label=_("Loan: interest rate (% a year)"),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "8.5"}),
        help_text=_("Debt campaigns only: 0 to 36, at most two decimals."),
    )
    # Bounds wider than the terms' own, so a term out of range gets loan_terms_validate's message.
    loan_term_months = forms.IntegerField(
        required=False, min_value=0, max_value=1000, label=_("Loan: term (months)"), help_text=_("1 to 60 months.")
    )
    loan_repayment_type = forms.ChoiceField(
        required=False, label=_("Loan: repayment"), choices=[("", "—"), *RepaymentType.choices]
    )
    loan_grace_months = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=1000,
        label=_("Loan: interest-only months first"),
        help_text=_("0 to 6, shorter than the term."),
    )

    LOAN_FIELDS = ("loan_rate", "loan_term_months", "loan_repayment_type", "loan_grace_months")

    def clean(self):
        cleaned = super().clean()
        cleaned["loan_terms"] = None
        if cleaned.get("funding_model") != FundingModel.DEBT:
            return cleaned
        try:
            terms = {
                "rate_bps": _parse_rate_bps(cleaned.get("loan_rate") or ""),
                "term_months": cleaned.get("loan_term_months"),
                "repayment_type": cleaned.get("loan_repayment_type") or "",
                "grace_months": cleaned.get("loan_grace_months") or 0,
            }
            loan_terms_validate(**terms)
        except InvalidInput as error:
            self.add_error(_LOAN_FORM_FIELDS.get(error.field), error.message)
        else:
            cleaned["loan_terms"] = terms
        return cleaned

    def campaign_fields(self) -> dict:
        """Return the cleaned fields of the campaign itself (the loan terms aside)."""
        skip = {*self.LOAN_FIELDS, "loan_terms", "delivery_holdback_percent"}
        fields = {name: value for name, value in self.cleaned_data.items() if name not in skip}
        percent = self.cleaned_data.get("delivery_holdback_percent")
        fields["delivery_holdback_bps"] = None if percent is None else percent * 100
        return fields

    @classmethod
    def initial_loan_fields(cls, terms) -> dict:
        """Return the form's loan fields as ``terms`` (a LoanTerms, or None) set them."""
        if terms is None:
            return {}
        return {
            "loan_rate": f"{Decimal(terms.rate_bps).scaleb(-2):f}".rstrip("0").rstrip("."),
            "loan_term_months": terms.term_months,
            "loan_repayment_type": terms.repayment_type,
            "loan_grace_months": terms.grace_months,
        }


# The loan terms' service fields, by the form field that shows their error.
_LOAN_FORM_FIELDS = {
    "rate_bps": "loan_rate",
    "term_months": "loan_term_months",
    "repayment_type": "loan_repayment_type",
    "grace_months": "loan_grace_months",
}


def _parse_rate_bps(text: str) -> int:
    """Return a rate typed as a percentage ("8.5") in basis points (850); raise InvalidInput."""
    try:
        rate = Decimal(text.strip().rstrip("%").strip())
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or rate != rate.quantize(Decimal("0.01")) or rate < 0:
        raise InvalidInput(
            gettext("Write the interest rate as a percentage, e.g. 8.5."), code="invalid_rate_bps", field="rate_bps"
        )
    if rate > 100:
        raise InvalidInput(
            gettext("The interest rate must be between 0 % and 36 % a year."), code="invalid_rate_bps", field="rate_bps"
        )
    return int(rate * 100)


# Sixty destinations with their costs fit comfortably; a body beyond this is refused by the form.
SHIPPING_RULES_TEXT_MAX_LENGTH = 4000


class RewardForm(PlainLabelsForm):
    """Step 4: one reward tier."""

    title = forms.CharField(label=_("Title"), max_length=field_max_length(RewardTier, "title"))
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=REWARD_DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    minimum_amount = forms.CharField(
        label=_("Minimum pledge"), max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    quantity_limit = forms.IntegerField(
        label=_("Quantity limit"),
        required=False,
        min_value=1,
        max_value=REWARD_QUANTITY_LIMIT_MAX,
        help_text=_("Leave empty for unlimited."),
    )
    estimated_delivery = forms.DateField(
        label=_("Estimated delivery"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    ships = forms.BooleanField(label=_("Physical reward: it is shipped to backers"), required=False)
    shipping_rules = forms.CharField(
        label=_("Shipping destinations and costs"),
        required=False,
        max_length=SHIPPING_RULES_TEXT_MAX_LENGTH,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "DE 5.00\neu 9.00\nnorth_america 12.00\nanywhere 20.00"}
        ),
        help_text=_(
            "One destination per line with its cost: a two-letter country code (ISO 3166-1, e.g. DE, US, CN), "
            "eu (the 27 EU countries), north_america (US, CA, MX) or anywhere (every other country). "
            "The most specific line applies; 0 ships free. Backers elsewhere cannot choose this reward."
        ),
    )

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["minimum_amount"].label = gettext("Minimum pledge (%(currency)s)") % {"currency": currency}

    def clean_minimum_amount(self) -> int:
        return _parse_money(self.cleaned_data["minimum_amount"], self.currency)

    def clean_shipping_rules(self) -> list[dict]:
        """Return the lines as [{"destination", "cost"}]; the service checks destinations and duplicates."""
        rules = []
        for number, line in enumerate(self.cleaned_data["shipping_rules"].splitlines(), start=1):
            words = line.replace(":", " ").replace("=", " ").split()
            if not words:
                continue
            if len(words) < 2:
                raise forms.ValidationError(
                    gettext("Line %(line)s: write a destination and its cost, e.g. “DE 5.00”.") % {"line": number},
                    code="invalid_shipping_rules",
                )
            destination, cost_text = " ".join(words[:-1]), words[-1]
            if cost_text.startswith("-"):
                raise forms.ValidationError(
                    gettext("Line %(line)s: a shipping cost cannot be negative.") % {"line": number},
                    code="invalid_shipping_cost",
                )
            cost = 0 if cost_text.strip("0.") == "" else _parse_money(cost_text, self.currency)
            rules.append({"destination": destination, "cost": cost})
        return rules


class RewardAvailabilityForm(PlainLabelsForm):
    """The reward editor's "Availability" section: when the tier takes claims (both optional).

    A form of its own (prefix ``availability``) beside RewardForm, so the editor's sections stay apart.
    """

    prefix = "availability"
    available_from = forms.DateTimeField(
        label=_("Available from"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Leave empty to offer it from launch."),
    )
    available_until = forms.DateTimeField(
        label=_("Available until"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Leave empty to offer it until the deadline."),
    )


STEP_LINE = re.compile(r"^\s*(?P<price>[\d.,]+)\s+until\s+(?P<end>.+?)\s*$", re.IGNORECASE)


class RewardPriceStepsForm(PlainLabelsForm):
    """The reward editor's "Price steps" section: one early price a line, before the tier's own price."""

    prefix = "steps"
    price_steps = forms.CharField(
        label=_("Price steps"),
        required=False,
        max_length=2_000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "20.00 until 100\n22.00 until 2030-01-31 18:00"}),
        help_text=_(
            "Optional, one a line: a price until that many are claimed, or until a date and time. "
            "After the last step the minimum pledge applies."
        ),
    )

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_price_steps(self) -> list[dict]:
        steps = []
        for line in filter(str.strip, self.cleaned_data["price_steps"].splitlines()):
            match = STEP_LINE.match(line)
            if match is None:
                raise forms.ValidationError(
                    gettext("Write each step as “20.00 until 100” or “20.00 until 2030-01-31 18:00”: %(line)s")
                    % {"line": line.strip()[:80]}
                )
            price, end = _parse_money(match["price"], self.currency), match["end"]
            if end.isdigit():
                steps.append({"price": price, "until_claimed": int(end), "until": None})
                continue
            until = parse_datetime(end.replace(" ", "T", 1))
            if until is None:
                raise forms.ValidationError(
                    gettext("Write each step as “20.00 until 100” or “20.00 until 2030-01-31 18:00”: %(line)s")
                    % {"line": line.strip()[:80]}
                )
            steps.append({"price": price, "until_claimed": None, "until": timezone.make_aware(until)})
        return steps


class CampaignUpdateForm(PlainLabelsForm):
    """News for backers: a title, the text, and who may read it."""

    title = forms.CharField(label=_("Title"), max_length=field_max_length(CampaignUpdate, "title"))
    body = forms.CharField(
        label=_("Update"),
        max_length=UPDATE_BODY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text=_("Blank lines start paragraphs."),
    )
    backers_only = forms.BooleanField(
        required=False, label=_("Backers only"), help_text=_("Others see the title, and that it is for backers.")
    )


class CommentForm(PlainLabelsForm):
    body = forms.CharField(
        label=_("Your comment"), max_length=COMMENT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )
    # The comment this replies to; empty for a new thread.
    parent = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)


class CommentReportForm(PlainLabelsForm):
    reason = forms.CharField(label=_("What is wrong with it?"), required=False, max_length=500)


class PictureForm(PlainLabelsForm):
    """One picture and the words that describe it (cover, gallery, reward); projects.media checks the file."""

    image = forms.FileField(
        label=_("Picture"),
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT_ATTRIBUTE}),
        help_text=_("JPEG, PNG or WebP, at most 10 MB and 40 megapixels."),
    )
    alt = forms.CharField(
        label=_("Description for people who cannot see it"),
        max_length=IMAGE_ALT_MAX_LENGTH,
        help_text=_("A few words: what is in the picture, e.g. “The board game laid out on a table”."),
    )


class StretchGoalForm(PlainLabelsForm):
    """A stretch goal: an amount above the goal and what it adds."""

    amount = forms.CharField(label=_("Amount"), max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    title = forms.CharField(label=_("Title"), max_length=STRETCH_GOAL_TITLE_MAX_LENGTH)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=STRETCH_GOAL_DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["amount"].label = gettext("Amount (%(currency)s)") % {"currency": currency}

    def clean_amount(self) -> int:
        return _parse_money(self.cleaned_data["amount"], self.currency)


class AddOnForm(PlainLabelsForm):
    """An add-on: a title, a price and an optional limit of units in all."""

    title = forms.CharField(label=_("Title"), max_length=ADDON_TITLE_MAX_LENGTH)
    price = forms.CharField(label=_("Price"), max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    quantity_limit = forms.IntegerField(
        label=_("Limit (empty: unlimited)"), required=False, min_value=1, max_value=REWARD_QUANTITY_LIMIT_MAX
    )
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=ADDON_DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["price"].label = gettext("Price (%(currency)s)") % {"currency": currency}

    def clean_price(self) -> int:
        return _parse_money(self.cleaned_data["price"], self.currency)

"""Forms of the promotion app's pages."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import CAMPAIGN_SLUG_MAX_LENGTH


class CampaignSlugForm(forms.Form):
    # Format, length and who holds an address are checked by ``campaign_slug_change`` alone,
    # so the page and the API refuse the same slugs with the same messages.
    slug = forms.CharField(
        label=_("New web address"),
        required=False,
        strip=True,
        help_text=_("Lower-case letters, digits and “-”, e.g. solar-lamps-2027."),
        widget=forms.TextInput(
            attrs={"maxlength": CAMPAIGN_SLUG_MAX_LENGTH, "autocomplete": "off", "spellcheck": "false"}
        ),
    )

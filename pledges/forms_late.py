"""Forms of late pledges: the initiator's offer (rewards and late prices) and a backer's late pledge."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import parse_amount

from .forms import PledgeForm, amount_as_text


class LateOfferForm(forms.Form):
    """One checkbox and one late price per reward of the campaign; ``prices()`` gives {reward id: minor units}."""

    def __init__(self, *args, campaign, rewards, current: dict[int, int], **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.rewards = rewards
        for reward in rewards:
            price = current.get(reward.pk)
            self.fields[f"offer_{reward.pk}"] = forms.BooleanField(
                required=False, initial=price is not None, label=reward.title
            )
            self.fields[f"price_{reward.pk}"] = forms.CharField(
                required=False,
                max_length=24,
                initial=amount_as_text(price or reward.minimum_amount, campaign.currency),
                label=_("Late price (%(currency)s)") % {"currency": campaign.currency},
                widget=forms.TextInput(attrs={"inputmode": "decimal"}),
            )

    def rows(self):
        """Yield (reward, its checkbox, its price field) for the template."""
        for reward in self.rewards:
            yield reward, self[f"offer_{reward.pk}"], self[f"price_{reward.pk}"]

    def clean(self):
        cleaned = super().clean()
        prices = {}
        for reward in self.rewards:
            if not cleaned.get(f"offer_{reward.pk}"):
                continue
            try:
                prices[reward.pk] = parse_amount(
                    cleaned.get(f"price_{reward.pk}") or "", self.campaign.currency, max_minor=settings.PLEDGE_MAX_MINOR
                )
            except InvalidInput as error:
                self.add_error(f"price_{reward.pk}", error.message)
        cleaned["prices"] = prices
        return cleaned


class LatePledgeForm(PledgeForm):
    """A late pledge: one of the offer's rewards (required), at least its late price, a sandbox card."""

    def __init__(self, *args, campaign, offer, **kwargs):
        late_rewards = list(offer.rewards.all())
        rewards = [late.reward for late in late_rewards]
        super().__init__(
            *args,
            campaign=campaign,
            rewards=rewards,
            prices={late.reward_id: late.price for late in late_rewards},
            **kwargs,
        )
        self.fields["reward"].required = True
        self.fields["reward"].choices = [(r.pk, r.title) for r in rewards]
        self.fields["amount"].label = _("Late pledge amount (%(currency)s)") % {"currency": campaign.currency}

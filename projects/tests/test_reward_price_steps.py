"""Price steps ("first 100 at 20.00, then 25.00"): validated, quoted for 15 minutes, and held to in the hold."""

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from crowdfund_site.api.testing import api_client
from crowdfund_site.exceptions import Conflict, InvalidInput
from escrow.models import GatewayOperation
from pledges.models import Pledge
from pledges.services import pledge_create
from projects.models import RewardTier
from projects.pricing import QUOTE_SECONDS, Price, price_now, quote_read, quote_sign
from projects.services import reward_tier_create
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory

CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


def _create(campaign, steps, minimum=2_500):
    return reward_tier_create(
        campaign=campaign, actor=campaign.initiator, title="Box", minimum_amount=minimum, price_steps=steps
    )


def _pledge(backer, campaign, reward, amount, quote="", key="k1"):
    return pledge_create(
        backer=backer,
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key=key,
        reward=reward,
        price_quote=quote,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("steps", "minimum", "code"),
    [
        (
            [{"price": 2_000, "until_claimed": 100}, {"price": 1_900, "until_claimed": 200}],
            2_500,
            "price_step_below_previous",
        ),
        ([{"price": 2_000, "until_claimed": 100}], 1_500, "price_step_below_previous"),
        ([{"price": 2_000, "until": "2020-01-01T00:00:00+00:00"}], 2_500, "price_step_date_before_launch"),
        ([{"price": 2_000, "until_claimed": 100, "until": "2040-01-01T00:00:00+00:00"}], 2_500, "invalid_price_steps"),
        ([{"price": 2_000, "until_claimed": 100}, {"price": 2_200, "until_claimed": 50}], 2_500, "invalid_price_steps"),
    ],
)
def test_bad_price_steps_are_refused_clearly_and_nothing_is_made(steps, minimum, code):
    campaign = CampaignFactory()
    with pytest.raises(InvalidInput) as refused:
        _create(campaign, steps, minimum)
    assert refused.value.code == code
    assert refused.value.message
    assert not RewardTier.objects.exists()


@pytest.mark.django_db
def test_the_price_follows_the_steps_as_slots_are_claimed():
    reward = _create(CampaignFactory(), [{"price": 2_000, "until_claimed": 100}])
    assert price_now(reward) == Price(2_000, 0, 100)
    reward.claimed_count = 100
    assert price_now(reward) == Price(2_500)


@pytest.mark.django_db
def test_a_quote_keeps_a_dated_steps_price_for_fifteen_minutes_then_the_form_must_ask_again(backer):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(
        campaign=campaign,
        minimum_amount=2_500,
        price_steps=[
            {"price": 2_000, "until_claimed": None, "until": (timezone.now() + timedelta(minutes=5)).isoformat()}
        ],
    )
    quote = quote_sign(reward, price_now(reward))
    assert quote_read(reward, quote + "x") is None
    # The step's date has passed since the form opened: the price is 25.00 now, the quote keeps 20.00.
    reward.price_steps[0]["until"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    assert price_now(reward) == Price(2_500)
    assert quote_read(reward, quote) == Price(2_000, 0)
    later = time.time() + QUOTE_SECONDS + 1
    with mock.patch("django.core.signing.time.time", return_value=later):
        assert quote_read(reward, quote) is None
        with pytest.raises(Conflict) as refused:
            _pledge(backer, campaign, reward, 2_000, quote=quote)
    assert refused.value.code == "price_quote_expired"
    assert "25.00" in refused.value.message
    assert not Pledge.objects.exists()
    assert not GatewayOperation.objects.exists()
    held = _pledge(backer, campaign, reward, 2_000, quote=quote, key="k2")  # still fresh: 20.00 kept
    assert held.amount == 2_000


@pytest.mark.django_db
def test_a_pledge_at_a_filled_steps_price_is_refused_with_the_new_price(backer):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(
        campaign=campaign, minimum_amount=2_500, price_steps=[{"price": 2_000, "until_claimed": 3, "until": None}]
    )
    quote = quote_sign(reward, price_now(reward))
    RewardTier.objects.filter(pk=reward.pk).update(claimed_count=3)  # the step filled since the form opened
    with pytest.raises(Conflict) as refused:
        _pledge(backer, campaign, reward, 2_000, quote=quote)
    assert refused.value.code == "price_changed"
    assert "25.00" in refused.value.message
    reward.refresh_from_db()
    assert reward.claimed_count == 3
    assert not GatewayOperation.objects.exists()
    held = _pledge(backer, campaign, reward, 2_500, key="k2")
    assert held.amount == 2_500


@pytest.mark.django_db
def test_the_pages_show_the_step_and_the_form_keeps_its_price_then_asks_again(client, backer):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(
        campaign=campaign, minimum_amount=2_500, price_steps=[{"price": 2_000, "until_claimed": 100, "until": None}]
    )
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "$20.00 or more" in page
    assert "first 100 at $20.00, then $25.00" in page
    client.force_login(backer)
    url = reverse("pledges:create", kwargs={"slug": campaign.slug})
    form = client.get(url, {"reward": reward.pk})
    quote = form.context["rewards"][0][0].price_quote
    assert f'name="price_quote_{reward.pk}" value="{quote}"' in form.content.decode()
    assert 'value="20.00"' in form.content.decode()
    RewardTier.objects.filter(pk=reward.pk).update(claimed_count=100)  # the step fills meanwhile
    data = {
        **CARD,
        "reward": reward.pk,
        "amount": "20.00",
        "idempotency_key": "form-1",
        f"price_quote_{reward.pk}": quote,
    }
    refused = client.post(url, data).content.decode()
    assert "it is now $25.00" in refused
    assert "$25.00+" in refused  # asked again at the new price
    assert not Pledge.objects.exists()
    data.update(amount="25.00", idempotency_key="form-2")
    data[f"price_quote_{reward.pk}"] = ""
    assert client.post(url, data).status_code == 302
    assert Pledge.objects.get().amount == 2_500


@pytest.mark.django_db
def test_the_api_takes_steps_shows_the_price_and_a_quote_and_refuses_a_cheaper_step():
    campaign = CampaignFactory()
    client = api_client(campaign.initiator)
    url = f"/api/v1/campaigns/{campaign.pk}/rewards/"
    body = {"title": "Box", "minimum_amount": 2_500, "price_steps": [{"price": 2_000, "until_claimed": 100}]}
    bad = client.post(url, {**body, "price_steps": [{"price": 3_000, "until_claimed": 100}]}, format="json")
    assert bad.status_code == 400, bad.content
    assert "cannot be cheaper than its last step" in bad.content.decode()
    assert not RewardTier.objects.exists()
    good = client.post(url, body, format="json")
    assert good.status_code == 201, good.content
    data = good.json()
    assert (data["price_now"], data["price_steps"][0]["until_claimed"]) == (2_000, 100)
    assert data["price_quote"]


@pytest.mark.django_db
def test_the_reward_editor_takes_price_steps_in_their_own_section_and_explains_a_bad_one(client):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)
    url = reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug})
    assert 'id="reward-price-steps"' in client.get(url).content.decode()
    data = {"title": "Box", "minimum_amount": "25.00", "steps-price_steps": "20.00 until 100\n19.00 until 200"}
    refused = client.post(url, data).content.decode()
    assert "cannot be cheaper than the step before it" in refused
    assert not RewardTier.objects.exists()
    data["steps-price_steps"] = "20.00 until 100\n22.00 until 2030-01-31 18:00"
    assert client.post(url, data).status_code == 302
    reward = RewardTier.objects.get()
    assert [s["price"] for s in reward.price_steps] == [2_000, 2_200]
    edit = reverse("projects:campaign_reward_edit", kwargs={"slug": campaign.slug, "reward_id": reward.pk})
    assert "22.00 until 2030-01-31 18:00" in client.get(edit).content.decode()

"""Availability windows on reward tiers: set, validated, shown, editable after launch, enforced in the hold."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crowdfund_site.api.testing import api_client
from crowdfund_site.exceptions import Conflict, InvalidInput
from escrow.models import GatewayOperation
from pledges.changes import pledge_change
from pledges.models import Pledge
from pledges.services import pledge_create
from pledges.tests.factories import new_key, pledge_held
from projects.models import RewardTier, RewardTierChange
from projects.services import reward_tier_create, reward_tier_update
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory

CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


def _pledge(backer, campaign, reward, key="k1"):
    return pledge_create(
        backer=backer,
        campaign=campaign,
        amount=reward.minimum_amount,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key=key,
        reward=reward,
    )


@pytest.mark.django_db
def test_a_window_that_ends_before_it_starts_is_refused_and_nothing_is_made():
    campaign = CampaignFactory()
    start = timezone.now() + timedelta(days=2)
    with pytest.raises(InvalidInput) as refused:
        reward_tier_create(
            campaign=campaign,
            actor=campaign.initiator,
            title="Early bird",
            minimum_amount=2_000,
            available_from=start,
            available_until=start - timedelta(hours=1),
        )
    assert (refused.value.code, refused.value.field) == ("window_ends_before_start", "available_until")
    assert "must end after it starts" in refused.value.message
    assert not RewardTier.objects.exists()


@pytest.mark.django_db
def test_a_window_past_the_deadline_is_refused_and_the_tier_stays_as_it_was():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign)
    with pytest.raises(InvalidInput) as refused:
        reward_tier_update(
            reward=reward, actor=campaign.initiator, available_until=campaign.deadline + timedelta(minutes=1)
        )
    assert refused.value.code == "window_after_deadline"
    reward.refresh_from_db()
    assert reward.available_until is None
    assert not RewardTierChange.objects.exists()


@pytest.mark.django_db
def test_after_launch_the_window_may_move_and_the_change_is_recorded():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign)
    until = timezone.now() + timedelta(days=3)
    reward_tier_update(reward=reward, actor=campaign.initiator, available_until=until)
    reward.refresh_from_db()
    assert reward.available_until == until
    change = RewardTierChange.objects.get(reward=reward)
    assert change.changes["available_until"][0] is None
    assert change.actor == campaign.initiator


@pytest.mark.django_db
def test_a_pledge_before_the_window_opens_is_refused_clearly_and_not_charged(backer):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, available_from=timezone.now() + timedelta(days=1))
    with pytest.raises(Conflict) as refused:
        _pledge(backer, campaign, reward)
    assert refused.value.code == "reward_not_yet_available"
    assert "is available from" in refused.value.message
    assert not Pledge.objects.exists()
    assert not GatewayOperation.objects.exists()


@pytest.mark.django_db
def test_the_hold_refuses_a_window_that_closed_after_the_page_was_loaded(backer):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, quantity_limit=10)
    # The window closes after the backer's copy was read: the hold's UPDATE is what refuses.
    RewardTier.objects.filter(pk=reward.pk).update(available_until=timezone.now() - timedelta(seconds=1))
    assert reward.available_now
    with pytest.raises(Conflict) as refused:
        _pledge(backer, campaign, reward)
    assert refused.value.code == "reward_no_longer_available"
    assert "was available until" in refused.value.message
    reward.refresh_from_db()
    assert reward.claimed_count == 0
    assert not Pledge.objects.exists()
    assert not GatewayOperation.objects.exists()


@pytest.mark.django_db
def test_a_pledge_inside_the_window_is_held():
    campaign = LiveCampaignFactory()
    now = timezone.now()
    reward = RewardTierFactory(
        campaign=campaign, available_from=now - timedelta(hours=1), available_until=now + timedelta(hours=1)
    )
    pledge = pledge_held(campaign=campaign, amount=reward.minimum_amount, reward=reward)
    reward.refresh_from_db()
    assert (pledge.reward_id, reward.claimed_count) == (reward.pk, 1)


@pytest.mark.django_db
def test_moving_a_pledge_to_a_closed_tier_is_refused_and_it_keeps_its_own():
    campaign = LiveCampaignFactory()
    kept = RewardTierFactory(campaign=campaign, minimum_amount=1_000)
    closed = RewardTierFactory(
        campaign=campaign, minimum_amount=1_000, available_until=timezone.now() - timedelta(seconds=1)
    )
    pledge = pledge_held(campaign=campaign, amount=1_000, reward=kept)
    with pytest.raises(Conflict) as refused:
        pledge_change(pledge=pledge, actor=pledge.backer, reward=closed, idempotency_key=new_key())
    assert refused.value.code == "reward_no_longer_available"
    pledge.refresh_from_db()
    closed.refresh_from_db()
    assert (pledge.reward_id, closed.claimed_count) == (kept.pk, 0)


@pytest.mark.django_db
def test_the_campaign_page_and_pledge_form_show_the_window(client, backer):
    campaign = LiveCampaignFactory()
    soon = timezone.now() + timedelta(days=2)
    RewardTierFactory(campaign=campaign, title="Early bird", available_until=soon)
    RewardTierFactory(campaign=campaign, title="Later", available_from=soon)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Available until" in page
    assert "Available from" in page
    client.force_login(backer)
    form = client.get(reverse("pledges:create", kwargs={"slug": campaign.slug})).content.decode()
    assert form.count(" disabled>") == 1  # "Later" cannot be chosen yet
    assert "Available from" in form


@pytest.mark.django_db
def test_the_pledge_form_explains_a_closed_window_and_takes_nothing(client, backer):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, available_until=timezone.now() - timedelta(seconds=1))
    client.force_login(backer)
    data = {**CARD, "reward": reward.pk, "amount": "25.00", "idempotency_key": "form-key-1"}
    response = client.post(reverse("pledges:create", kwargs={"slug": campaign.slug}), data)
    assert response.status_code == 200  # the form again, with the reason on the reward
    assert "was available until" in response.content.decode()
    assert not Pledge.objects.exists()


@pytest.mark.django_db
def test_the_reward_editor_sets_a_window_in_its_own_section(client):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)
    url = reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug})
    assert 'id="reward-availability"' in client.get(url).content.decode()
    data = {
        "title": "Early bird",
        "minimum_amount": "20.00",
        "availability-available_from": "2030-01-02T10:00",
        "availability-available_until": "2030-01-01T10:00",
    }
    refused = client.post(url, data)
    assert "must end after it starts" in refused.content.decode()
    assert not RewardTier.objects.exists()
    data["availability-available_until"] = "2030-01-09T10:00"
    assert client.post(url, data).status_code == 302
    reward = RewardTier.objects.get()
    assert reward.available_until - reward.available_from == timedelta(days=7)


@pytest.mark.django_db
def test_the_api_takes_and_shows_a_window_and_explains_a_bad_one():
    campaign = CampaignFactory()
    client = api_client(campaign.initiator)
    url = f"/api/v1/campaigns/{campaign.pk}/rewards/"
    bad = client.post(
        url,
        {
            "title": "Early",
            "minimum_amount": 2_000,
            "available_from": "2030-01-02T10:00:00Z",
            "available_until": "2030-01-01T10:00:00Z",
        },
        format="json",
    )
    assert bad.status_code == 400, bad.content
    assert "must end after it starts" in bad.content.decode()
    assert not RewardTier.objects.exists()
    good = client.post(
        url,
        {"title": "Early", "minimum_amount": 2_000, "available_until": "2030-01-01T10:00:00Z"},
        format="json",
    )
    assert good.status_code == 201, good.content
    assert good.json()["available_until"].startswith("2030-01-01")
    assert good.json()["available_now"] is True

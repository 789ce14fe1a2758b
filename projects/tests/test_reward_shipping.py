"""Shipping rules on reward tiers: what an initiator may set, and what is refused with nothing stored."""

import pytest
from django.urls import reverse

from crowdfund_site.api.testing import api_client
from crowdfund_site.exceptions import Conflict, InvalidInput
from projects.models import RewardShippingRule, RewardTier
from projects.selectors import reward_shipping_rules
from projects.services import reward_tier_create, reward_tier_update
from projects.shipping import shipping_cost_for
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db


def _create(campaign, **fields):
    return reward_tier_create(campaign=campaign, actor=campaign.initiator, title="Mug", minimum_amount=2_000, **fields)


def test_a_physical_reward_keeps_its_rules_normalised():
    campaign = CampaignFactory()

    reward = _create(
        campaign,
        ships=True,
        shipping_rules=[
            {"destination": "de", "cost": 500},
            {"destination": "EU", "cost": 900},
            {"destination": "North America", "cost": 1_200},
            {"destination": "anywhere", "cost": 0},
        ],
    )

    assert reward.ships
    assert reward_shipping_rules(reward=reward) == [("DE", 500), ("eu", 900), ("north_america", 1_200), ("anywhere", 0)]


@pytest.mark.parametrize(
    ("ships", "rules", "code"),
    [
        (True, [], "shipping_rules_required"),
        (True, [{"destination": "DE", "cost": -1}], "invalid_shipping_cost"),
        (True, [{"destination": "DE", "cost": 1.5}], "invalid_shipping_cost"),
        (True, [{"destination": "DE", "cost": 10**12}], "invalid_shipping_cost"),
        (True, [{"destination": "DE", "cost": 500}, {"destination": "de", "cost": 700}], "duplicate_destination"),
        (True, [{"destination": "XX", "cost": 500}], "invalid_destination"),
        (True, [{"destination": "Mars", "cost": 500}], "invalid_destination"),
        (True, [{"destination": None, "cost": 500}], "invalid_destination"),
        (True, ["DE 5.00"], "invalid_shipping_rules"),
        (True, [{"destination": "DE", "cost": 1}] * 61, "too_many_shipping_rules"),
        (False, [{"destination": "DE", "cost": 500}], "not_physical"),
    ],
)
def test_bad_rules_are_refused_and_nothing_is_stored(ships, rules, code):
    campaign = CampaignFactory()

    with pytest.raises(InvalidInput) as refused:
        _create(campaign, ships=ships, shipping_rules=rules)

    assert (refused.value.code, refused.value.field) == (code, "shipping_rules")
    assert not RewardTier.objects.exists()
    assert not RewardShippingRule.objects.exists()


def test_an_update_replaces_the_rules_as_a_whole_and_a_bad_one_changes_nothing():
    campaign = CampaignFactory()
    reward = _create(campaign, ships=True, shipping_rules=[{"destination": "DE", "cost": 500}])

    reward_tier_update(reward=reward, actor=campaign.initiator, shipping_rules=[{"destination": "eu", "cost": 800}])
    assert reward_shipping_rules(reward=reward) == [("eu", 800)]

    with pytest.raises(InvalidInput):
        reward_tier_update(
            reward=reward,
            actor=campaign.initiator,
            title="Big mug",
            shipping_rules=[{"destination": "FR", "cost": 1}, {"destination": "FR", "cost": 2}],
        )
    reward.refresh_from_db()
    assert reward.title == "Mug"
    assert reward_shipping_rules(reward=reward) == [("eu", 800)]

    reward_tier_update(reward=reward, actor=campaign.initiator, ships=False)
    reward.refresh_from_db()
    assert not reward.ships
    assert reward_shipping_rules(reward=reward) == []


def test_after_launch_a_reward_keeps_shipping_or_not_as_backers_chose_it():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, ships=True)
    RewardShippingRule.objects.create(reward=reward, destination="DE", cost=500)

    with pytest.raises(Conflict) as ships:
        reward_tier_update(reward=reward, actor=campaign.initiator, ships=False)

    assert ships.value.code == "reward_locked"
    reward.refresh_from_db()
    assert reward.ships
    assert reward_shipping_rules(reward=reward) == [("DE", 500)]
    # The same rules sent again are no change, so the rest of an edit still goes through.
    reward_tier_update(
        reward=reward,
        actor=campaign.initiator,
        description="Now blue",
        shipping_rules=[{"destination": "DE", "cost": 500}],
    )


def test_the_most_specific_rule_wins():
    rules = [("anywhere", 3), ("eu", 2), ("FR", 1)]
    assert [shipping_cost_for(rules, c) for c in ("FR", "DE", "JP")] == [1, 2, 3]
    assert shipping_cost_for([("eu", 2)], "US") is None
    assert shipping_cost_for([("north_america", 4)], "NA") is None  # Namibia is not North America


def test_the_reward_editor_takes_one_destination_per_line(client):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)
    url = reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug})
    form = {"title": "Poster", "minimum_amount": "20", "ships": "on", "shipping_rules": "DE 5\neu: 9.50\nanywhere 0"}

    response = client.post(url, {**form, "shipping_rules": "DE 5\nDE 6"})
    assert "listed twice" in response.content.decode()
    response = client.post(url, {**form, "shipping_rules": "DE -5"})
    assert "cannot be negative" in response.content.decode()
    assert not RewardTier.objects.exists()

    assert client.post(url, form).status_code == 302
    reward = RewardTier.objects.get()
    assert reward_shipping_rules(reward=reward) == [("DE", 500), ("eu", 950), ("anywhere", 0)]
    assert "Ships to:" in client.get(url).content.decode()


def test_the_api_creates_a_physical_reward_and_refuses_bad_rules_with_a_400():
    campaign = CampaignFactory()
    client = api_client(campaign.initiator)
    url = f"/api/v1/campaigns/{campaign.pk}/rewards/"
    body = {"title": "Poster", "minimum_amount": 2_000, "ships": True}

    for rules, code in [
        ([{"destination": "DE", "cost": -5}], "invalid"),
        ([{"destination": "DE", "cost": 5}, {"destination": "DE", "cost": 6}], "duplicate_destination"),
        ([{"destination": "ZZ", "cost": 5}], "invalid_destination"),
        ([], "shipping_rules_required"),
    ]:
        response = client.post(url, {**body, "shipping_rules": rules}, format="json")
        assert response.status_code == 400, response.content
        assert code == "invalid" or response.json()["code"] == code
    assert not RewardTier.objects.exists()

    response = client.post(url, {**body, "shipping_rules": [{"destination": "eu", "cost": 900}]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["shipping_rules"] == [{"destination": "eu", "cost": 900}]

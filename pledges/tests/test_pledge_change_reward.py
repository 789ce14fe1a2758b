from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotFound
from pledges.changes import pledge_change
from pledges.services import pledge_cancel
from pledges.tests.factories import new_key, pledge_held
from pledges.tests.test_pledge_shipping import pledge_shipped, shipping_reward
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.verification import ledger_verify


@pytest.fixture
def tiers(live_campaign):
    return (
        RewardTierFactory(campaign=live_campaign, title="Sticker", minimum_amount=1_000, quantity_limit=5),
        RewardTierFactory(campaign=live_campaign, title="Mug", minimum_amount=3_000, quantity_limit=1),
        RewardTierFactory(campaign=live_campaign, title="Jacket", minimum_amount=9_000),
    )


def pledge_change_reward(*, pledge, actor, reward):
    return pledge_change(pledge=pledge, actor=actor, reward=reward, idempotency_key=new_key())


def claimed(*rewards):
    for reward in rewards:
        reward.refresh_from_db()
    return [reward.claimed_count for reward in rewards]


@pytest.mark.django_db
def test_moves_the_slot_without_moving_money(live_campaign, tiers, backer):
    sticker, mug, _ = tiers
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=sticker)
    live_campaign.refresh_from_db()
    pledged_before = live_campaign.pledged_amount

    pledge = pledge_change_reward(pledge=pledge, actor=backer, reward=mug)
    assert pledge.reward == mug
    assert claimed(sticker, mug) == [0, 1]
    with pytest.raises(InvalidInput):  # nothing to change
        pledge_change_reward(pledge=pledge, actor=backer, reward=mug)
    assert claimed(sticker, mug) == [0, 1]

    pledge_change_reward(pledge=pledge, actor=backer, reward=None)
    assert claimed(sticker, mug) == [0, 0]
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == pledged_before
    assert ledger_verify() == []


@pytest.mark.django_db
def test_refuses_a_tier_the_amount_does_not_cover_or_that_is_sold_out(live_campaign, tiers, backer):
    sticker, mug, jacket = tiers
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=sticker)
    with pytest.raises(InvalidInput) as error:
        pledge_change_reward(pledge=pledge, actor=backer, reward=jacket)
    assert error.value.code == "below_reward_minimum"
    pledge_held(campaign=live_campaign, amount=3_000, reward=mug)  # the last mug
    with pytest.raises(Conflict) as error:
        pledge_change_reward(pledge=pledge, actor=backer, reward=mug)
    assert error.value.code == "sold_out"
    assert claimed(sticker, mug) == [1, 1]  # nothing changed
    other = RewardTierFactory(campaign=LiveCampaignFactory(), minimum_amount=100)
    with pytest.raises(InvalidInput):
        pledge_change_reward(pledge=pledge, actor=backer, reward=other)


@pytest.mark.django_db
def test_only_the_backer_and_only_while_held_and_open(live_campaign, tiers, backer):
    sticker, mug, _ = tiers
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=sticker)
    with pytest.raises(NotFound):
        pledge_change_reward(pledge=pledge, actor=UserFactory(), reward=mug)
    live_campaign.deadline = timezone.now() - timedelta(seconds=1)
    live_campaign.save(update_fields=["deadline"])
    with pytest.raises(Conflict):
        pledge_change_reward(pledge=pledge, actor=backer, reward=mug)
    live_campaign.deadline = timezone.now() + timedelta(days=1)
    live_campaign.save(update_fields=["deadline"])
    pledge_cancel(pledge=pledge, actor=backer)
    with pytest.raises(Conflict):
        pledge_change_reward(pledge=pledge, actor=backer, reward=mug)


@pytest.mark.django_db
def test_change_reward_page(client, live_campaign, tiers, backer):
    sticker, mug, jacket = tiers
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=sticker)
    url = reverse("pledges:change_reward", kwargs={"pk": pledge.pk})
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    assert client.post(url, {"reward": mug.pk}).status_code == 404

    client.force_login(backer)
    page = client.get(url).content.decode()
    assert "Jacket" in page
    assert "raise your pledge to $90.00" in page
    assert f"/pledges/{pledge.pk}/manage/?reward={jacket.pk}" in page  # the amount it takes, offered
    response = client.post(url, {"reward": jacket.pk})
    assert response.status_code == 200
    assert "needs a pledge of at least $90.00" in response.content.decode()
    response = client.post(url, {"reward": mug.pk})
    assert response.status_code == 302
    pledge.refresh_from_db()
    assert pledge.reward == mug


@pytest.mark.django_db
def test_change_reward_page_compares_the_price_with_the_pledge_without_its_shipping(client, live_campaign):
    # 50.00 pledged for the mug plus 5.00 shipping to Germany: 55.00 charged in all. The 54.00 lamp
    # needs a bigger pledge (pledge_create's rule: shipping comes on top of the price), and the page
    # lists it with the link that raises the pledge, as its choice's label says.
    mug = shipping_reward(live_campaign, rules=[("DE", 500)], title="Mug")
    lamp = RewardTierFactory(campaign=live_campaign, title="Lamp", minimum_amount=5_400)
    poster = RewardTierFactory(campaign=live_campaign, title="Poster", minimum_amount=4_000)
    pledge = pledge_shipped(campaign=live_campaign, reward=mug, country="DE")
    assert (pledge.amount, pledge.shipping_amount) == (5_500, 500)

    client.force_login(pledge.backer)
    page = client.get(reverse("pledges:change_reward", kwargs={"pk": pledge.pk})).content.decode()
    assert "These rewards need a bigger pledge" in page
    assert f"/pledges/{pledge.pk}/manage/?reward={lamp.pk}" in page
    assert "raise to USD 54.00" in page
    assert f"?reward={poster.pk}" not in page  # 40.00 is covered by the 50.00 pledged

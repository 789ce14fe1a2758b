"""Editing reward tiers: anything before launch; after it, what backers can live with, and they are told."""

from datetime import date

import pytest
from django.core import mail
from django.urls import reverse

from crowdfund_site.exceptions import Conflict
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus, RewardTierChange
from projects.services import reward_tier_update
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory


@pytest.mark.django_db
def test_before_launch_anything_changes():
    reward = RewardTierFactory(campaign=CampaignFactory(), minimum_amount=2_500)
    reward_tier_update(reward=reward, actor=reward.campaign.initiator, title="Boxed", minimum_amount=3_000)
    reward.refresh_from_db()
    assert (reward.title, reward.minimum_amount) == ("Boxed", 3_000)
    assert not RewardTierChange.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "code"),
    [({"minimum_amount": 1_000}, "reward_locked"), ({"title": "Cheaper"}, "reward_locked")],
)
def test_after_launch_price_and_title_never_change(fields, code):
    reward = RewardTierFactory(campaign=LiveCampaignFactory(), minimum_amount=2_500)
    with pytest.raises(Conflict) as refused:
        reward_tier_update(reward=reward, actor=reward.campaign.initiator, **fields)
    assert refused.value.code == code
    reward.refresh_from_db()
    assert (reward.minimum_amount, reward.title) != (1_000, "Cheaper")


@pytest.mark.django_db
def test_after_launch_the_limit_never_goes_below_what_is_claimed():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=1_000, quantity_limit=10)
    for _ in range(3):
        pledge_held(campaign=campaign, amount=1_000, reward=reward)
    with pytest.raises(Conflict) as refused:
        reward_tier_update(reward=reward, actor=campaign.initiator, quantity_limit=2)
    assert refused.value.code == "limit_below_claimed"
    reward_tier_update(reward=reward, actor=campaign.initiator, quantity_limit=3)
    reward.refresh_from_db()
    assert (reward.quantity_limit, reward.claimed_count, reward.sold_out) == (3, 3, True)


@pytest.mark.django_db
def test_backers_of_the_tier_are_told_about_a_new_delivery_date(celery_eager, django_capture_on_commit_callbacks):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=1_000, estimated_delivery=date(2027, 3, 1))
    other_reward = RewardTierFactory(campaign=campaign, minimum_amount=1_000)
    chose_it = pledge_held(campaign=campaign, amount=1_000, reward=reward).backer
    pledge_held(campaign=campaign, amount=1_000, reward=other_reward)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reward_tier_update(reward=reward, actor=campaign.initiator, estimated_delivery=date(2027, 6, 1))
    (message,) = mail.outbox
    assert message.to == [chose_it.email]
    assert "June 2027" in message.body
    assert RewardTierChange.objects.get(reward=reward).changes == {"estimated_delivery": ["2027-03-01", "2027-06-01"]}


@pytest.mark.django_db
def test_after_success_only_the_delivery_date_changes():
    reward = RewardTierFactory(campaign=LiveCampaignFactory(status=CampaignStatus.SUCCEEDED))
    with pytest.raises(Conflict):
        reward_tier_update(reward=reward, actor=reward.campaign.initiator, description="Now with stickers")
    reward_tier_update(reward=reward, actor=reward.campaign.initiator, estimated_delivery=date(2028, 1, 1))


@pytest.mark.django_db
def test_in_review_nothing_changes():
    reward = RewardTierFactory(campaign=CampaignFactory(status=CampaignStatus.IN_REVIEW))
    with pytest.raises(Conflict):
        reward_tier_update(reward=reward, actor=reward.campaign.initiator, description="x")


@pytest.mark.django_db
def test_browser_form_after_launch_keeps_the_price_and_shows_refusals(client):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500, quantity_limit=5, title="Tin")
    pledge_held(campaign=campaign, amount=2_500, reward=reward)
    pledge_held(campaign=campaign, amount=2_500, reward=reward)
    client.force_login(campaign.initiator)
    url = reverse("projects:campaign_reward_edit", kwargs={"slug": campaign.slug, "reward_id": reward.pk})
    assert "Edit reward" in client.get(campaign.get_absolute_url()).content.decode()
    posted = {"title": "Free", "minimum_amount": "0.01", "description": "Tin and dice", "quantity_limit": "1"}
    response = client.post(url, posted)
    assert response.status_code == 400
    assert "2 backers already chose this reward" in response.content.decode()
    response = client.post(url, {**posted, "quantity_limit": "4"})
    assert response.status_code == 302
    reward.refresh_from_db()
    assert (reward.title, reward.minimum_amount, reward.description, reward.quantity_limit) == (
        "Tin",
        2_500,
        "Tin and dice",
        4,
    )


@pytest.mark.django_db
def test_api_refuses_a_price_change_after_launch_with_a_409(client):
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500)
    client.force_login(campaign.initiator)
    url = f"/api/v1/campaigns/{campaign.pk}/rewards/{reward.pk}/"
    response = client.patch(url, {"minimum_amount": 1_000}, content_type="application/json")
    assert response.status_code == 409
    assert response.json()["code"] == "reward_locked"
    response = client.patch(url, {"description": "Now with a poster"}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["description"] == "Now with a poster"

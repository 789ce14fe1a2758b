from datetime import date

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CampaignFactory, CategoryFactory, RewardTierFactory
from projects.tests.pictures import upload


@pytest.fixture
def initiator(client):
    user = UserFactory()
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_create_a_campaign_in_steps_and_submit_it(client, initiator):
    category = CategoryFactory(name="Games", slug="games")
    response = client.post(
        reverse("projects:campaign_start"),
        {
            "title": "Tiny Dungeon",
            "summary": "A pocket roguelike.",
            "category": category.pk,
            "currency": "EUR",
            "goal": "5,000.50",
        },
    )
    campaign = Campaign.objects.get(initiator=initiator)
    assert (campaign.status, campaign.goal, campaign.currency) == (CampaignStatus.DRAFT, 500_050, "EUR")
    assert response["Location"] == reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "story"})

    edit = reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "basics"})
    assert 'value="5000.50"' in client.get(edit).content.decode()

    response = client.post(
        reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "story"}),
        {"description": "Twelve tiles and two heroes.", "risks": "Printing could be late."},
    )
    assert response["Location"] == reverse("projects:campaign_pictures", kwargs={"slug": campaign.slug})
    response = client.post(
        reverse("projects:campaign_cover_upload", kwargs={"slug": campaign.slug}),
        {"cover-image": upload(), "cover-alt": "Twelve tiles on a table"},
    )
    assert response.status_code == 302
    response = client.post(
        reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "funding"}),
        {"funding_model": "flexible", "duration_days": "21", "launch_on_approval": "on"},
    )
    assert response["Location"] == reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug})
    rewards = reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug})
    client.post(rewards, {"title": "Print and play", "minimum_amount": "10"})
    client.post(
        rewards,
        {"title": "Boxed", "minimum_amount": "45.00", "quantity_limit": "100", "estimated_delivery": "2027-03-01"},
    )
    campaign.refresh_from_db()
    assert (campaign.description, campaign.funding_model, campaign.duration_days) == (
        "Twelve tiles and two heroes.",
        "flexible",
        21,
    )
    assert [(r.title, r.minimum_amount, r.quantity_limit, r.estimated_delivery) for r in campaign.rewards.all()] == [
        ("Print and play", 1_000, None, None),
        ("Boxed", 4_500, 100, date(2027, 3, 1)),
    ]

    review = reverse("projects:campaign_review", kwargs={"slug": campaign.slug})
    assert "Submit for review" in client.get(review).content.decode()
    response = client.post(review, follow=True)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.IN_REVIEW
    assert "is submitted" in response.content.decode()


@pytest.mark.django_db
def test_step_validation_errors(client, initiator):
    response = client.post(
        reverse("projects:campaign_start"),
        {"title": "", "summary": "x", "category": "", "currency": "JPY", "goal": "10.5"},
    )
    errors = response.context["form"].errors
    assert "title" in errors
    assert "category" in errors
    assert errors["goal"] == ["JPY amounts have no decimals."]
    assert not Campaign.objects.exists()

    campaign = CampaignFactory(initiator=initiator)
    response = client.post(
        reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "funding"}),
        {"funding_model": "flexible", "duration_days": "90"},
    )
    assert "duration_days" in response.context["form"].errors
    response = client.post(
        reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug}), {"title": "X", "minimum_amount": "-1"}
    )
    assert "minimum_amount" in response.context["form"].errors


@pytest.mark.django_db
def test_submitting_without_a_story_is_refused_with_a_message(client, initiator):
    campaign = CampaignFactory(initiator=initiator, description="")
    response = client.post(reverse("projects:campaign_review", kwargs={"slug": campaign.slug}), follow=True)
    assert "Add a summary and a story" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


@pytest.mark.django_db
def test_feedback_is_shown_and_the_campaign_can_be_edited_and_resubmitted(client, initiator):
    campaign = CampaignFactory(
        initiator=initiator, status=CampaignStatus.CHANGES_REQUESTED, review_feedback="Say when it ships."
    )
    assert "Say when it ships." in client.get(reverse("projects:my_campaigns")).content.decode()
    story = reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "story"})
    assert "The reviewer asked for changes" in client.get(story).content.decode()
    client.post(story, {"description": "Ships in March.", "risks": "Shipping could be slow."})
    client.post(reverse("projects:campaign_review", kwargs={"slug": campaign.slug}))
    campaign.refresh_from_db()
    assert (campaign.description, campaign.status) == ("Ships in March.", CampaignStatus.IN_REVIEW)


@pytest.mark.django_db
def test_a_campaign_in_review_cannot_be_edited(client, initiator):
    campaign = CampaignFactory(initiator=initiator, status=CampaignStatus.IN_REVIEW)
    story = reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "story"})
    assert "can no longer be edited" in client.get(story).content.decode()
    response = client.post(story, {"description": "Sneaky change."})
    assert "can only be edited while it is a draft" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.description != "Sneaky change."


@pytest.mark.django_db
def test_only_the_initiator_sees_and_edits_their_campaign(client):
    campaign = CampaignFactory()
    reward = RewardTierFactory(campaign=campaign)
    client.force_login(UserFactory())
    urls = [
        reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "basics"}),
        reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug}),
        reverse("projects:campaign_review", kwargs={"slug": campaign.slug}),
    ]
    for url in urls:
        assert client.get(url).status_code == 404
        assert client.post(url, {"description": "x", "title": "x"}).status_code == 404
    delete = reverse("projects:campaign_reward_delete", kwargs={"slug": campaign.slug, "reward_id": reward.pk})
    assert client.post(delete).status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.rewards.count() == 1


@pytest.mark.django_db
def test_initiator_pages_require_login(client):
    for name in ("projects:campaign_start", "projects:my_campaigns"):
        assert client.get(reverse(name))["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_remove_a_reward(client, initiator):
    campaign = CampaignFactory(initiator=initiator)
    reward = RewardTierFactory(campaign=campaign, title="Mug")
    delete = reverse("projects:campaign_reward_delete", kwargs={"slug": campaign.slug, "reward_id": reward.pk})
    assert client.get(delete).status_code == 405  # no state change on GET
    client.post(delete)
    assert not campaign.rewards.exists()


@pytest.mark.django_db
def test_unknown_step_is_404(client, initiator):
    campaign = CampaignFactory(initiator=initiator)
    assert (
        client.get(reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "nope"})).status_code == 404
    )


@pytest.mark.django_db
def test_launch_an_approved_campaign(client, initiator):
    campaign = CampaignFactory(initiator=initiator, status=CampaignStatus.APPROVED, duration_days=20)
    launch = reverse("projects:campaign_launch", kwargs={"slug": campaign.slug})
    assert "Launch now" in client.get(reverse("projects:my_campaigns")).content.decode()
    assert client.get(launch).status_code == 405
    response = client.post(launch)
    assert response["Location"] == campaign.get_absolute_url()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE
    response = client.post(launch, follow=True)
    assert "cannot be launched" in response.content.decode()


@pytest.mark.django_db
def test_nobody_else_can_launch_it(client):
    campaign = CampaignFactory(status=CampaignStatus.APPROVED)
    client.force_login(UserFactory())
    assert client.post(reverse("projects:campaign_launch", kwargs={"slug": campaign.slug})).status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.APPROVED

"""The demo looks like a platform: several initiators, campaigns in every category and state, pictures."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db.models import Max, Min

from accounts.models import User
from pledges.models import Pledge
from projects.models import Campaign, CampaignStatus, CampaignUpdate, Category, Comment, FundingModel
from risk.models import RiskAssessment
from settlement.verification import ledger_verify


@pytest.mark.django_db
def test_seed_demo_fills_a_platform():
    call_command("seed_demo")
    campaigns = Campaign.objects.exclude(funding_model=FundingModel.DEBT)
    assert campaigns.count() >= 24
    assert campaigns.values("initiator").distinct().count() >= 6
    assert len({c.title for c in campaigns}) == len({c.summary for c in campaigns}) == campaigns.count()
    assert len({c.description for c in campaigns}) == campaigns.count()
    assert set(Category.objects.filter(campaigns__in=campaigns).values_list("slug", flat=True)) >= {
        "art", "community", "design", "film", "food", "games", "music", "publishing", "technology",
    }  # fmt: skip
    states = set(campaigns.values_list("status", flat=True))
    assert states >= set(CampaignStatus.values) - {CampaignStatus.CLOSING}  # closing lasts moments
    # Every campaign has a cover whose files exist; the avatars too.
    for campaign in Campaign.objects.all():
        assert campaign.cover["alt"], campaign.title
        assert default_storage.exists(f"{campaign.cover['key']}-{campaign.cover['widths'][0]}.webp")
    assert User.objects.exclude(avatar={}).count() >= 6
    # Pledges spread over the weeks a campaign has been live, not all made in the last second.
    live = campaigns.filter(status=CampaignStatus.LIVE).order_by("launched_at").first()
    span = Pledge.objects.filter(campaign=live).aggregate(first=Min("held_at"), last=Max("held_at"))
    assert span["last"] - span["first"] > timedelta(days=3)
    assert CampaignUpdate.objects.count() >= 10
    assert Comment.objects.count() >= 20
    assert ledger_verify() == []


@pytest.mark.django_db
def test_the_seeded_campaign_in_review_is_scored_and_has_a_rendered_story():
    call_command("seed_demo")
    in_review = Campaign.objects.filter(status=CampaignStatus.IN_REVIEW)
    assert in_review.exists()
    for campaign in in_review:
        assert RiskAssessment.objects.filter(campaign=campaign).exists()
    assert not Campaign.objects.exclude(description="").filter(description_html="").exists()

"""The demo data as a new visitor and a reviewer meet it."""

import pytest
from django.core.management import call_command

from projects.models import Campaign, CampaignStatus
from risk.models import RiskAssessment


@pytest.mark.django_db
def test_the_seeded_campaign_in_review_is_scored_and_has_a_rendered_story():
    call_command("seed_demo")
    in_review = Campaign.objects.filter(status=CampaignStatus.IN_REVIEW)
    assert in_review.exists()
    for campaign in in_review:
        assert RiskAssessment.objects.filter(campaign=campaign).exists()
    assert not Campaign.objects.exclude(description="").filter(description_html="").exists()

"""The review risk score: prior weights at first, then a model fitted on closed campaigns."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, CategoryFactory, RewardTierFactory
from risk import review, tasks
from risk.models import RiskAssessment, RiskModelVersion
from risk.selectors import campaign_risk_scores, risk_latest_assessment_for
from risk.services import risk_assess_campaign, risk_assess_campaigns, risk_model_refit

from .factories import closed_campaign_create

pytestmark = pytest.mark.django_db


def _risky_campaign(category):
    initiator = UserFactory(email_verified=False, date_joined=timezone.now() - timedelta(days=2))
    return CampaignFactory(
        initiator=initiator, category=category, goal=5_000_000, duration_days=60, description="Trust me."
    )


def _safe_campaign(category):
    initiator = UserFactory(email_verified=True, date_joined=timezone.now() - timedelta(days=900))
    for _ in range(2):
        closed_campaign_create(failed=False, initiator=initiator, category=category, goal=80_000)
    campaign = CampaignFactory(
        initiator=initiator, category=category, goal=80_000, duration_days=30, description="A long story. " * 200
    )
    for months in (2, 3, 4):
        RewardTierFactory(campaign=campaign, estimated_delivery=(timezone.now() + timedelta(days=30 * months)).date())
    return campaign


def test_before_enough_closed_campaigns_the_prior_scores_a_risky_campaign_above_a_safe_one():
    games = CategoryFactory(name="Games")
    risky, safe = _risky_campaign(games), _safe_campaign(games)

    risky_assessment = risk_assess_campaign(campaign=risky)
    safe_assessment = risk_assess_campaign(campaign=safe)

    assert risky_assessment.model_version.is_prior
    assert 0 <= safe_assessment.probability < risky_assessment.probability <= 1
    assert risky_assessment.probability > 0.8
    assert safe_assessment.probability < 0.3
    assert any("times the median of Games campaigns (raises the risk)" in r for r in risky_assessment.reasons)
    assert any("2 successful campaigns" in r and "lowers the risk" in r for r in safe_assessment.reasons)
    assert set(risky_assessment.features) == set(review.FEATURE_NAMES)


def test_assessing_an_unchanged_campaign_again_keeps_the_same_assessment():
    campaign = _risky_campaign(CategoryFactory())

    first = risk_assess_campaign(campaign=campaign)
    again = risk_assess_campaign(campaign=campaign)

    assert again.pk == first.pk
    assert RiskAssessment.objects.filter(campaign=campaign).count() == 1


def test_a_changed_campaign_gets_a_new_assessment_and_the_latest_one_is_found():
    campaign = _risky_campaign(CategoryFactory())
    first = risk_assess_campaign(campaign=campaign)
    campaign.description = "A much longer story about what we will build and how. " * 50
    campaign.save()

    second = risk_assess_campaign(campaign=campaign)

    assert second.pk != first.pk
    assert second.probability < first.probability
    assert risk_latest_assessment_for([campaign.pk]) == {campaign.pk: second}


def _history_of_closed_campaigns(category, count=40):
    """Failed campaigns had big goals and unverified initiators, mostly; succeeded ones the opposite."""
    rng = np.random.default_rng(5)
    for i in range(count):
        failed = i % 2 == 0
        typical = not rng.random() < 0.15
        big_goal = failed == typical
        initiator = UserFactory(email_verified=(not failed) == typical)
        closed_campaign_create(
            failed=failed,
            initiator=initiator,
            category=category,
            goal=int(rng.integers(400_000, 900_000) if big_goal else rng.integers(30_000, 90_000)),
        )


def test_the_refit_learns_from_closed_campaigns_and_is_versioned():
    games = CategoryFactory(name="Games")
    _history_of_closed_campaigns(games)

    version = risk_model_refit()

    assert not version.is_prior
    assert version.trained_on == 40
    weights = dict(zip(version.feature_names, version.weights, strict=True))
    assert weights["log_goal_vs_category"] > 0
    assert weights["email_verified"] < 0
    assert risk_model_refit().version == version.version + 1

    assessment = risk_assess_campaign(campaign=_risky_campaign(games))
    assert assessment.model_version.version == version.version + 1
    assert assessment.probability > 0.5


def test_with_too_few_closed_campaigns_the_refit_keeps_the_documented_prior():
    _history_of_closed_campaigns(CategoryFactory(), count=review.MIN_TRAINING_CAMPAIGNS - 1)

    version = risk_model_refit()

    assert version.is_prior
    assert version.weights == [f.prior_weight for f in review.FEATURES]
    assert risk_model_refit() == version
    assert RiskModelVersion.objects.count() == 1


def test_the_periodic_task_refits_and_rescores_the_review_queue():
    games = CategoryFactory(name="Games")
    _history_of_closed_campaigns(games)
    waiting = _risky_campaign(games)
    waiting.status, waiting.submitted_at = CampaignStatus.IN_REVIEW, timezone.now()
    waiting.save()
    risk_assess_campaign(campaign=waiting)  # with the prior

    number = tasks.refit_review_model()

    assert risk_latest_assessment_for([waiting.pk])[waiting.pk].model_version.version == number
    assert not RiskModelVersion.objects.get(version=number).is_prior


def test_scoring_many_campaigns_at_once_gives_the_same_scores_as_one_by_one():
    games, art = CategoryFactory(name="Games"), CategoryFactory(name="Art")
    campaigns = [_risky_campaign(games), _safe_campaign(games), _risky_campaign(art), _safe_campaign(art)]
    ids = [c.pk for c in campaigns]

    together = campaign_risk_scores(ids)
    one_by_one = [campaign_risk_scores([pk]).probabilities[0] for pk in ids]

    assert together.features.campaign_ids.tolist() == ids
    assert together.probabilities == pytest.approx(one_by_one)
    stored = risk_assess_campaigns(campaign_ids=ids)
    assert [a.probability for a in stored] == pytest.approx(one_by_one)


def test_a_stored_model_for_other_features_is_replaced_by_the_prior():
    RiskModelVersion.objects.create(
        version=1, feature_names=["old"], weights=[1.0], intercept=0.0, feature_means=[0.0], feature_scales=[1.0]
    )

    probability = tasks.assess_campaign(_risky_campaign(CategoryFactory()).pk)

    current = RiskModelVersion.objects.order_by("-version").first()
    assert (current.version, current.is_prior) == (2, True)
    assert 0 < probability < 1

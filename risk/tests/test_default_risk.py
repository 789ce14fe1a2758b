"""The default model of debt campaigns: grade A to E from the probability of default, in words."""

import datetime

import pytest
from django.conf import settings
from django.utils import timezone, translation

from lending.models import RepaymentType
from lending.tests.factories import debt_campaign_live
from risk import default
from risk.selectors import campaign_default_risk

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("probability", "grade"), [(0.01, "A"), (0.03, "B"), (0.059, "B"), (0.1, "C"), (0.2, "D"), (0.25, "E"), (0.9, "E")]
)
def test_grades_follow_the_probability_of_default(probability, grade):
    assert default.grade_of(probability) == grade


def _aged(campaign, *, days: int, verified: bool):
    campaign.initiator.date_joined = timezone.now() - datetime.timedelta(days=days)
    campaign.initiator.email_verified = verified
    campaign.initiator.save(update_fields=["date_joined", "email_verified"])
    return campaign


def test_a_short_cheap_loan_of_an_established_borrower_grades_better_than_a_long_dear_bullet_of_a_new_one():
    safe = _aged(debt_campaign_live(rate_bps=500, term_months=12), days=2_000, verified=True)
    risky = _aged(
        debt_campaign_live(rate_bps=3_400, term_months=60, repayment_type=RepaymentType.BULLET), days=3, verified=False
    )

    safe_risk, risky_risk = campaign_default_risk(campaign=safe), campaign_default_risk(campaign=risky)

    assert safe_risk.grade == "A"
    assert risky_risk.grade == "E"
    assert risky_risk.probability > 5 * safe_risk.probability
    assert risky_risk.reasons[0] == "The interest rate is 34 % a year (raises the risk)."
    assert "The loan runs for 60 months (raises the risk)." in risky_risk.reasons


def test_the_campaign_page_shows_the_grade_and_why_in_english_and_chinese(client):
    campaign = _aged(debt_campaign_live(rate_bps=3_400, term_months=60), days=3, verified=False)

    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Risk grade" in page
    assert 'data-risk-grade="E"' in page
    assert "The interest rate is 34 % a year (raises the risk)." in page
    assert "34 %" in page
    assert "60 months" in page

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    # The request leaves Chinese active in this thread: later tests read English.
    with translation.override("en"):
        page = client.get(campaign.get_absolute_url()).content.decode()
    assert "风险等级" in page
    assert "年利率为 34 %（增加风险）。" in page

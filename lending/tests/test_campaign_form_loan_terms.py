"""A debt campaign's loan terms set in the browser's funding step, previewed, and fixed at submission."""

import pytest
from django.urls import reverse

from lending.models import LoanTerms, RepaymentType
from projects.models import CampaignStatus, FundingModel
from projects.services import campaign_submit_for_review
from projects.tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

LOAN = {
    "funding_model": "debt",
    "duration_days": "30",
    "loan_rate": "12",
    "loan_term_months": "12",
    "loan_repayment_type": "annuity",
    "loan_grace_months": "0",
}


def _funding_url(campaign) -> str:
    return reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "funding"})


def test_the_initiator_makes_a_draft_a_loan_with_its_terms(client):
    campaign = CampaignFactory(goal=100_000)
    client.force_login(campaign.initiator)

    response = client.post(_funding_url(campaign), LOAN | {"loan_rate": "8.5", "loan_grace_months": "2"})

    assert response.status_code == 302
    campaign.refresh_from_db()
    terms = LoanTerms.objects.get(campaign=campaign)
    assert campaign.funding_model == FundingModel.DEBT
    assert (terms.rate_bps, terms.term_months, terms.repayment_type, terms.grace_months) == (
        850,
        12,
        RepaymentType.ANNUITY,
        2,
    )
    page = client.get(_funding_url(campaign)).content.decode()
    assert 'value="8.5"' in page
    assert "Your repayment schedule" in page


def test_the_preview_button_shows_the_schedule_of_the_goal_and_saves_nothing(client):
    campaign = CampaignFactory(goal=100_000)
    client.force_login(campaign.initiator)

    page = client.post(_funding_url(campaign), LOAN | {"preview_schedule": "1"}).content.decode()

    # 12 % over 12 months of $1,000 pays the lenders $66.19 of interest (as the lenders' preview says).
    assert "Your repayment schedule" in page
    assert "$66.19 of interest to your lenders" in page
    assert not LoanTerms.objects.filter(campaign=campaign).exists()
    campaign.refresh_from_db()
    assert campaign.funding_model == FundingModel.ALL_OR_NOTHING


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("loan_rate", "-1", "Write the interest rate as a percentage"),
        ("loan_rate", "37", "between 0 % and 36 %"),
        ("loan_rate", "8.555", "Write the interest rate as a percentage"),
        ("loan_term_months", "0", "between 1 and 60 months"),
        ("loan_term_months", "61", "between 1 and 60 months"),
        ("loan_grace_months", "12", "The grace period must be"),
        ("loan_repayment_type", "", "Unknown repayment type"),
    ],
)
def test_bad_terms_are_explained_and_change_nothing(client, field, value, message):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)

    response = client.post(_funding_url(campaign), LOAN | {field: value})

    assert response.status_code == 200
    assert message in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.funding_model == FundingModel.ALL_OR_NOTHING
    assert not LoanTerms.objects.exists()


def test_terms_are_fixed_once_the_campaign_is_submitted(client):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)
    client.post(_funding_url(campaign), LOAN)
    campaign_submit_for_review(campaign=campaign, actor=campaign.initiator)

    response = client.post(_funding_url(campaign), LOAN | {"loan_rate": "20"})

    assert response.status_code == 200
    assert LoanTerms.objects.get(campaign=campaign).rate_bps == 1200
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.IN_REVIEW


def test_a_loan_without_terms_cannot_be_submitted():
    from crowdfund_site.exceptions import InvalidInput

    campaign = CampaignFactory(funding_model=FundingModel.DEBT)

    with pytest.raises(InvalidInput, match="loan terms"):
        campaign_submit_for_review(campaign=campaign, actor=campaign.initiator)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT

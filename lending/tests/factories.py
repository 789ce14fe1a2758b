"""Debt campaigns and loans made the way the platform makes them: pledges through ``pledge_create``."""

import datetime

from django.conf import settings

from lending.models import Loan, LoanTerms, RepaymentType
from lending.services import loan_create
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus, FundingModel
from projects.tests.factories import LiveCampaignFactory

START = datetime.date(2027, 1, 15)


def debt_campaign_live(*, goal: int = 100_000, **terms) -> LiveCampaignFactory:
    """Return a live USD debt campaign with loan terms (12 % over 12 months, annuity, unless given)."""
    campaign = LiveCampaignFactory(goal=goal, funding_model=FundingModel.DEBT)
    LoanTerms.objects.create(
        campaign=campaign,
        **{
            "rate_bps": 1200,
            "term_months": 12,
            "repayment_type": RepaymentType.ANNUITY,
            "grace_months": 0,
            "servicing_fee_bps": settings.LENDING_SERVICING_FEE_BPS,
        }
        | terms,
    )
    return campaign


def loan_funded(*, amounts: list[int], **terms) -> Loan:
    """Return the repaying loan of a debt campaign whose lenders lent ``amounts``."""
    campaign = debt_campaign_live(goal=sum(amounts), **terms)
    for amount in amounts:
        pledge_held(campaign=campaign, amount=amount)
    # Settlement's own tests cover closing; here the campaign simply reached its goal.
    campaign.status = CampaignStatus.SUCCEEDED
    campaign.save(update_fields=["status"])
    return loan_create(campaign=campaign, start_date=START)

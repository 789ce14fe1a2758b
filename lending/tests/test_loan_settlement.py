"""A debt campaign's whole life through settlement: funded, disbursed, repaid, and the ledger checks out."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from escrow.ledger import account_balances
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import PLATFORM_REVENUE, initiator_payout_code, lender_balance_code
from lending.models import Loan, LoanStatus
from lending.services import loan_repay
from pledges.models import PledgeStatus
from pledges.tests.factories import pledge_held
from projects.models import Campaign, CampaignStatus, FundingModel
from projects.tests.factories import LiveCampaignFactory
from settlement.services import SettlementError, campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

from .factories import debt_campaign_live

pytestmark = pytest.mark.django_db


def close_and_settle(campaign: Campaign) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert campaign.pk in campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def balance(code: str) -> int:
    return account_balances(codes=[code]).get((code, "USD"), 0)


def test_a_funded_debt_campaign_disburses_its_loan_and_twelve_installments_pay_every_lender_back():
    campaign = debt_campaign_live(goal=100_000, rate_bps=1200, term_months=12)
    campaign.platform_fee_bps = 500
    campaign.save(update_fields=["platform_fee_bps"])
    pledges = [pledge_held(campaign=campaign, amount=amount) for amount in (50_000, 33_333, 16_667)]

    campaign = close_and_settle(campaign)

    assert campaign.status == CampaignStatus.SUCCEEDED
    loan = Loan.objects.get(campaign=campaign)
    assert (loan.status, loan.principal, loan.borrower_id) == (LoanStatus.REPAYING, 100_000, campaign.initiator_id)
    assert loan.start_date == timezone.localdate()
    # Disbursed: the principal minus the 5 % platform fee went to the borrower.
    payout = GatewayOperation.objects.get(kind=OperationKind.PAYOUT)
    assert payout.amount == 95_000
    assert balance(initiator_payout_code(campaign.initiator_id)) == 95_000
    assert ledger_verify() == []

    for installment in loan.installments.order_by("number"):
        loan_repay(loan=loan, actor=loan.borrower, amount=installment.owed, idempotency_key=str(uuid.uuid4()))
        assert ledger_verify() == []

    loan.refresh_from_db()
    assert loan.status == LoanStatus.REPAID
    for pledge in pledges:
        share = loan.lenders.get(pledge=pledge)
        assert share.principal_received == pledge.amount
        assert balance(lender_balance_code(pledge.backer_id)) == share.principal_received + share.income_received
    assert balance(PLATFORM_REVENUE) == 5_000 + loan.fees_collected


def test_a_debt_campaign_that_misses_its_goal_refunds_every_lender_and_makes_no_loan():
    campaign = debt_campaign_live(goal=100_000)
    pledge_held(campaign=campaign, amount=40_000)

    campaign = close_and_settle(campaign)

    assert campaign.status == CampaignStatus.FAILED
    assert list(campaign.pledges.values_list("status", flat=True)) == [PledgeStatus.REFUNDED]
    assert not Loan.objects.exists()
    assert ledger_verify() == []


def test_a_debt_campaign_without_terms_is_not_paid_out():
    campaign = LiveCampaignFactory(goal=10_000, funding_model=FundingModel.DEBT)
    pledge_held(campaign=campaign, amount=10_000)

    with pytest.raises(SettlementError, match="no loan terms"):
        close_and_settle(campaign)

    assert not GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).exists()
    assert not Loan.objects.exists()

"""The demo data has a debt campaign raising, a loan repaying with payments and a late one, a withdrawal, a re-lend."""

import pytest
from django.core.management import call_command

from lending.models import Loan, LoanStatus, Withdrawal, WithdrawalStatus
from lending.selectors import lender_balance_available, lender_balances
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus, FundingModel
from settlement.verification import ledger_verify


@pytest.mark.django_db
def test_the_demo_has_a_loan_raising_one_repaying_and_one_late():
    call_command("seed_demo")

    debt = Campaign.objects.filter(funding_model=FundingModel.DEBT)
    assert debt.filter(status=CampaignStatus.LIVE).count() == 1
    statuses = sorted(Loan.objects.values_list("status", flat=True))
    assert statuses == [LoanStatus.LATE, LoanStatus.REPAYING]
    assert Loan.objects.get(status=LoanStatus.REPAYING).repayments.count() == 3
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.status == WithdrawalStatus.PAID
    assert withdrawal.amount > 0
    balance = next(b for b in lender_balances(user=withdrawal.lender) if b.currency == withdrawal.currency)
    assert balance.balance >= withdrawal.amount  # half was taken out, half is still there
    # One lender re-lent what the repaying loan paid them to the raising loan, without a card.
    relent = Pledge.objects.get(campaign=debt.get(status=CampaignStatus.LIVE), from_balance__gt=0)
    assert relent.backer.username == "backer2"
    assert (relent.status, relent.card_amount) == (PledgeStatus.HELD, 0)
    assert lender_balance_available(user=relent.backer, currency=relent.currency) == 0
    assert ledger_verify() == []
    call_command("seed_lending_demo")  # a second run adds nothing
    assert Loan.objects.count() == 2

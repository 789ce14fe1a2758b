"""Loan terms, loans and repayments through the services, as a borrower and lenders see them."""

import uuid
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEvent
from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from lending.models import (
    Installment,
    LenderPayout,
    LoanLender,
    LoanStatus,
    LoanTerms,
    Repayment,
    RepaymentKind,
    RepaymentType,
)
from lending.services import (
    loan_create,
    loan_pay_off,
    loan_recovery_record,
    loan_repay,
    loan_terms_set,
    loan_write_off,
    loans_assess_late,
)
from projects.models import CampaignStatus, FundingModel
from projects.tests.factories import CampaignFactory

from .factories import START, loan_funded

pytestmark = pytest.mark.django_db


def key() -> str:
    return f"repay-{uuid.uuid4()}"


def terms_of(campaign, **overrides):
    arguments = {"rate_bps": 900, "term_months": 24, "repayment_type": RepaymentType.ANNUITY, "grace_months": 2}
    return loan_terms_set(campaign=campaign, actor=campaign.initiator, **(arguments | overrides))


def test_the_initiator_sets_terms_with_the_servicing_fee_of_the_day(settings):
    settings.LENDING_SERVICING_FEE_BPS = 150
    campaign = CampaignFactory(funding_model=FundingModel.DEBT)

    terms = terms_of(campaign)
    terms = terms_of(campaign, rate_bps=1000)

    assert (terms.rate_bps, terms.term_months, terms.grace_months, terms.servicing_fee_bps) == (1000, 24, 2, 150)
    assert LoanTerms.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"rate_bps": -1}, "invalid_rate_bps"),
        ({"rate_bps": 3601}, "invalid_rate_bps"),
        ({"term_months": 0}, "invalid_term_months"),
        ({"term_months": 61}, "invalid_term_months"),
        ({"grace_months": 7}, "invalid_grace_months"),
        ({"term_months": 3, "grace_months": 3}, "invalid_grace_months"),
        ({"repayment_type": "balloon"}, "invalid_repayment_type"),
    ],
)
def test_terms_out_of_range_are_refused_with_the_field_named(overrides, code):
    campaign = CampaignFactory(funding_model=FundingModel.DEBT)

    with pytest.raises(InvalidInput) as refusal:
        terms_of(campaign, **overrides)

    assert refusal.value.code == code
    assert not LoanTerms.objects.exists()


def test_terms_are_fixed_once_the_campaign_is_submitted():
    campaign = CampaignFactory(funding_model=FundingModel.DEBT)
    terms_of(campaign, rate_bps=800)
    campaign.status = CampaignStatus.IN_REVIEW
    campaign.save(update_fields=["status"])

    with pytest.raises(Conflict) as refusal:
        terms_of(campaign, rate_bps=3000)

    assert refusal.value.code == "terms_fixed"
    assert LoanTerms.objects.get().rate_bps == 800


def test_only_the_initiator_of_a_debt_campaign_sets_terms():
    campaign = CampaignFactory(funding_model=FundingModel.DEBT)
    with pytest.raises(NotAllowed):
        loan_terms_set(
            campaign=campaign, actor=UserFactory(), rate_bps=100, term_months=6, repayment_type=RepaymentType.BULLET
        )
    with pytest.raises(Conflict, match="Only debt campaigns"):
        terms_of(CampaignFactory())


def test_a_funded_campaign_becomes_a_loan_with_its_lenders_and_schedule():
    loan = loan_funded(amounts=[60_000, 30_000, 10_000])

    assert (loan.status, loan.principal, loan.rate_bps, loan.term_months) == (LoanStatus.REPAYING, 100_000, 1200, 12)
    assert sorted(LoanLender.objects.values_list("principal", flat=True)) == [10_000, 30_000, 60_000]
    installments = list(Installment.objects.filter(loan=loan))
    assert len(installments) == 12
    assert sum(i.principal for i in installments) == 100_000
    assert installments[0].due_date == START.replace(month=2)
    assert loan_create(campaign=loan.campaign, start_date=START) == loan


def test_a_partial_repayment_pays_the_fee_then_interest_then_principal_and_lenders_pro_rata():
    loan = loan_funded(amounts=[60_000, 30_000, 10_000])
    first = Installment.objects.get(loan=loan, number=1)  # 1,000.00 at 12 %: 10.00 interest, 0.83 fee

    repayment = loan_repay(loan=loan, actor=loan.borrower, amount=5_000, idempotency_key=key())

    assert (repayment.fee, repayment.interest, repayment.principal) == (first.fee, first.interest, 5_000 - 1_083)
    payouts = {p.share.principal: p.amount for p in LenderPayout.objects.filter(repayment=repayment)}
    assert sum(payouts.values()) == 5_000 - first.fee
    # Interest 10.00 splits 6.00/3.00/1.00; principal 39.17 splits 23.502/11.751/3.917 -> 23.51/11.75/3.91.
    assert payouts == {60_000: 2_951, 30_000: 1_475, 10_000: 491}


def test_repaying_everything_pays_each_lender_exactly_what_they_lent_and_closes_the_loan():
    loan = loan_funded(amounts=[33_333, 33_333, 33_334])
    owed = sum(i.owed for i in loan.installments.all())

    loan_repay(loan=loan, actor=loan.borrower, amount=owed - 1, idempotency_key=key())
    loan_repay(loan=loan, actor=loan.borrower, amount=1, idempotency_key=key())

    loan.refresh_from_db()
    assert loan.status == LoanStatus.REPAID
    assert [(s.principal_received, s.principal) for s in LoanLender.objects.filter(loan=loan)] == [
        (33_333, 33_333),
        (33_333, 33_333),
        (33_334, 33_334),
    ]
    assert loan.income_distributed + loan.fees_collected + loan.principal == owed
    with pytest.raises(Conflict) as refusal:
        loan_repay(loan=loan, actor=loan.borrower, amount=1, idempotency_key=key())
    assert refusal.value.code == "loan_not_payable"


@pytest.mark.parametrize(("amount", "code"), [(0, "amount_not_positive"), (-5, "amount_not_positive")])
def test_a_repayment_of_nothing_is_refused(amount, code):
    loan = loan_funded(amounts=[10_000])

    with pytest.raises(InvalidInput) as refusal:
        loan_repay(loan=loan, actor=loan.borrower, amount=amount, idempotency_key=key())

    assert refusal.value.code == code
    assert not Repayment.objects.exists()


def test_a_repayment_above_what_is_owed_is_refused_and_changes_nothing():
    loan = loan_funded(amounts=[10_000])
    owed = sum(i.owed for i in loan.installments.all())

    with pytest.raises(InvalidInput, match="more than is owed") as refusal:
        loan_repay(loan=loan, actor=loan.borrower, amount=owed + 1, idempotency_key=key())

    assert refusal.value.code == "amount_above_owed"
    assert not Repayment.objects.exists()
    assert sum(i.owed for i in loan.installments.all()) == owed


def test_a_retried_repayment_is_paid_once():
    loan = loan_funded(amounts=[10_000, 20_000])
    same = key()

    first = loan_repay(loan=loan, actor=loan.borrower, amount=3_000, idempotency_key=same)
    again = loan_repay(loan=loan, actor=loan.borrower, amount=3_000, idempotency_key=same)

    assert again == first
    assert Repayment.objects.count() == 1
    with pytest.raises(Conflict):
        loan_repay(loan=loan, actor=loan.borrower, amount=4_000, idempotency_key=same)


def test_staff_write_off_a_late_loan_with_a_reason_and_it_is_audited():
    loan = loan_funded(amounts=[10_000])
    loan.status = LoanStatus.LATE
    loan.save(update_fields=["status"])
    staff = StaffFactory()

    with pytest.raises(NotAllowed):
        loan_write_off(loan=loan, actor=loan.borrower, reason="nope")
    with pytest.raises(InvalidInput):
        loan_write_off(loan=loan, actor=staff, reason=" ")
    loan = loan_write_off(loan=loan, actor=staff, reason="Borrower insolvent")

    assert loan.status == LoanStatus.WRITTEN_OFF
    assert AuditEvent.objects.filter(action="loan_write_off", reason="Borrower insolvent").count() == 1
    with pytest.raises(Conflict):
        loan_write_off(loan=loan, actor=staff, reason="again")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    amounts=st.lists(st.integers(1, 500_000), min_size=1, max_size=12),
    fractions=st.lists(st.fractions(0, 1), min_size=1, max_size=6),
    repayment_type=st.sampled_from(RepaymentType.values),
)
def test_random_lenders_and_repayments_keep_the_invariants(amounts, fractions, repayment_type):
    loan = loan_funded(amounts=amounts, repayment_type=repayment_type, grace_months=1, rate_bps=3600)
    for fraction in [*fractions, 1]:
        owed = sum(i.owed for i in loan.installments.all())
        repayment = loan_repay(
            loan=loan, actor=loan.borrower, amount=max(1, int(owed * fraction)), idempotency_key=key()
        )
        assert sum(p.amount for p in repayment.payouts.all()) == repayment.amount - repayment.fee
        loan.refresh_from_db()
        for share in LoanLender.objects.filter(loan=loan):
            assert share.principal_received <= share.principal
            assert abs(share.principal_received * loan.principal - loan.principal_distributed * share.principal) < (
                loan.principal
            )
            assert abs(share.income_received * loan.principal - loan.income_distributed * share.principal) < (
                loan.principal
            )
        if loan.status == LoanStatus.REPAID:
            break
    assert loan.status == LoanStatus.REPAID
    assert list(LoanLender.objects.filter(loan=loan).values_list("principal_received", flat=True)) == amounts


def days_after(installment_number: int, days: int):
    return Installment.objects.get(number=installment_number).due_date + timedelta(days=days)


def test_an_installment_unpaid_past_the_grace_period_makes_the_loan_late_with_one_late_fee():
    loan = loan_funded(amounts=[100_000])  # 88.85 + 0.83 fee due on the first due date

    assert loans_assess_late(today=days_after(1, 15)) == {"late_fees": 0, "late": 0, "defaulted": 0}
    assert loans_assess_late(today=days_after(1, 16)) == {"late_fees": 1, "late": 1, "defaulted": 0}
    assert loans_assess_late(today=days_after(1, 17)) == {"late_fees": 0, "late": 0, "defaulted": 0}

    loan.refresh_from_db()
    first = Installment.objects.get(number=1)
    assert loan.status == LoanStatus.LATE
    assert first.late_fee == 15_00  # 5 % of 89.68 is less than the fixed 15.00


def test_the_late_fee_is_five_percent_of_a_large_installment_and_is_paid_to_the_lenders():
    loan = loan_funded(amounts=[600_000, 400_000])
    loans_assess_late(today=days_after(1, 16))
    first = Installment.objects.get(loan=loan, number=1)
    assert first.late_fee == round(Fraction(first.principal + first.interest + first.fee, 20))

    repayment = loan_repay(loan=loan, actor=loan.borrower, amount=first.owed, idempotency_key=key())

    loan.refresh_from_db()
    assert repayment.late_fee == first.late_fee
    assert loan.income_distributed == first.interest + first.late_fee
    assert loan.status == LoanStatus.REPAYING  # caught up


def test_a_loan_late_for_120_days_defaults_and_still_takes_recoveries():
    loan = loan_funded(amounts=[10_000, 30_000])
    loans_assess_late(today=days_after(1, 16))
    assert loans_assess_late(today=days_after(1, 119))["defaulted"] == 0
    assert loans_assess_late(today=days_after(1, 120))["defaulted"] == 1
    loan.refresh_from_db()
    assert loan.status == LoanStatus.DEFAULTED

    recovery = loan_repay(
        loan=loan, actor=StaffFactory(), amount=2_000, idempotency_key=key(), kind=RepaymentKind.RECOVERY
    )

    assert sum(p.amount for p in recovery.payouts.all()) == 2_000 - recovery.fee


def test_a_recovery_is_staff_only_needs_a_reason_and_a_loan_behind_and_is_audited():
    loan = loan_funded(amounts=[10_000, 30_000])
    staff = StaffFactory()
    with pytest.raises(Conflict):  # a loan repaying on time takes repayments, not recoveries
        loan_recovery_record(loan=loan, actor=staff, amount=1_000, reason="agency", idempotency_key="r")
    loans_assess_late(today=days_after(1, 16))
    loan.refresh_from_db()
    with pytest.raises(NotAllowed):
        loan_recovery_record(loan=loan, actor=loan.borrower, amount=1_000, reason="agency", idempotency_key="r")
    with pytest.raises(InvalidInput):
        loan_recovery_record(loan=loan, actor=staff, amount=1_000, reason="  ", idempotency_key="r")
    with pytest.raises(InvalidInput):
        loan_recovery_record(loan=loan, actor=staff, amount=10**9, reason="agency", idempotency_key="r")
    assert not Repayment.objects.filter(loan=loan).exists()

    recovery = loan_recovery_record(loan=loan, actor=staff, amount=1_000, reason="agency", idempotency_key="r")

    assert recovery.kind == RepaymentKind.RECOVERY
    # It pays the 15.00 late fee first: all of it goes to the lenders, a quarter and three quarters.
    assert (recovery.late_fee, recovery.fee) == (1_000, 0)
    assert [(p.share.principal, p.income) for p in recovery.payouts.order_by("id")] == [(10_000, 250), (30_000, 750)]
    assert AuditEvent.objects.get(action="loan_repay", actor=staff).reason == "agency"
    again = loan_recovery_record(loan=loan, actor=staff, amount=1_000, reason="agency", idempotency_key="r")
    assert again == recovery


def test_paying_off_early_charges_interest_and_fee_to_date_only_and_repays_every_lender():
    loan = loan_funded(amounts=[50_000, 50_000])  # 1,000.00 at 12 % over 12 months, from 15 January
    first = Installment.objects.get(loan=loan, number=1)
    loan_repay(loan=loan, actor=loan.borrower, amount=first.owed, idempotency_key=key())
    second = Installment.objects.get(loan=loan, number=2)  # due 15 March, 28 days after 15 February
    outstanding = 100_000 - first.principal
    today = second.due_date - timedelta(days=14)

    payoff = loan_pay_off(loan=loan, actor=loan.borrower, today=today, idempotency_key="payoff")

    assert payoff.principal == outstanding
    assert payoff.interest == round(Fraction(second.interest, 2))
    assert payoff.fee == round(Fraction(second.fee, 2))
    assert payoff.amount == outstanding + payoff.interest + payoff.fee
    loan.refresh_from_db()
    assert loan.status == LoanStatus.REPAID
    assert list(LoanLender.objects.filter(loan=loan).values_list("principal_received", flat=True)) == [50_000] * 2
    assert loan_pay_off(loan=loan, actor=loan.borrower, today=today, idempotency_key="payoff") == payoff


def _statements_of_a_repayment(lenders: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    loan = loan_funded(amounts=[100_000 // lenders] * lenders)
    first = Installment.objects.get(loan=loan, number=1)
    loan_repay(loan=loan, actor=loan.borrower, amount=first.total, idempotency_key=key())  # accounts made
    with CaptureQueriesContext(connection) as queries:
        repayment = loan_repay(loan=loan, actor=loan.borrower, amount=first.total, idempotency_key=key())
    lines = LenderPayout.objects.filter(repayment=repayment)
    assert lines.count() == lenders
    assert sum(line.amount for line in lines) == repayment.amount - repayment.fee
    return len(queries)


def test_a_repayment_to_many_lenders_takes_as_many_statements_as_one_to_a_few():
    # The payout lines, the lenders' running totals and the ledger's entries are written in bulk.
    assert _statements_of_a_repayment(40) == _statements_of_a_repayment(4)

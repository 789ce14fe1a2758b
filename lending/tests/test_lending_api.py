"""The lending API through the test client: terms, schedule preview, my loans."""

import uuid

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from escrow.models import GatewayOperation, OperationKind
from lending.models import LoanTerms, Repayment
from lending.services import loan_repay
from projects.models import CampaignStatus, FundingModel
from projects.tests.factories import CampaignFactory, LiveCampaignFactory

from .factories import debt_campaign_live, loan_funded

pytestmark = pytest.mark.django_db


def test_the_initiator_sets_terms_and_anyone_sees_them_fixed_after_submission():
    campaign = CampaignFactory(funding_model=FundingModel.DEBT)
    client = api_client(campaign.initiator)
    body = {"rate_bps": 950, "term_months": 18, "repayment_type": "equal_principal", "grace_months": 1}

    response = client.put(f"/api/v1/campaigns/{campaign.pk}/loan-terms/", body, format="json")

    assert response.status_code == 200
    assert response.json() == body | {"servicing_fee_bps": 100}
    campaign.status = CampaignStatus.IN_REVIEW
    campaign.save(update_fields=["status"])
    refused = client.put(f"/api/v1/campaigns/{campaign.pk}/loan-terms/", body | {"rate_bps": 10}, format="json")
    assert_error(refused, 409, "terms_fixed")
    assert LoanTerms.objects.get().rate_bps == 950


@pytest.mark.parametrize("field", [{"rate_bps": -1}, {"rate_bps": 3601}, {"term_months": 0}, {"term_months": 61}])
def test_terms_out_of_range_are_a_400_naming_the_field(field):
    campaign = CampaignFactory(funding_model=FundingModel.DEBT)
    body = {"rate_bps": 950, "term_months": 18, "repayment_type": "annuity"} | field

    response = api_client(campaign.initiator).put(f"/api/v1/campaigns/{campaign.pk}/loan-terms/", body, format="json")

    assert next(iter(field)) in assert_error(response, 400)["fields"]
    assert not LoanTerms.objects.exists()


def test_someone_else_cannot_set_terms():
    campaign = CampaignFactory(funding_model=FundingModel.DEBT)
    body = {"rate_bps": 950, "term_months": 18, "repayment_type": "annuity"}
    # A draft is not visible to others at all: a 404, like every campaign they may not see.
    response = api_client(UserFactory()).put(f"/api/v1/campaigns/{campaign.pk}/loan-terms/", body, format="json")
    assert_error(response, 404)


def test_anyone_previews_what_a_loan_pays_back():
    campaign = debt_campaign_live(rate_bps=1200, term_months=12)

    response = api_client().get(f"/api/v1/campaigns/{campaign.pk}/loan-schedule/", {"amount": "100000"})

    data = response.json()
    assert response.status_code == 200
    assert [i["total"] for i in data["installments"][:11]] == [88_85] * 11
    assert data["total_back"] == 100_000 + data["total_interest"]
    assert sum(i["principal"] for i in data["installments"]) == 100_000


@pytest.mark.parametrize("amount", ["0", "-5", "12.50", "lots"])
def test_a_preview_of_a_bad_amount_is_a_400(amount):
    campaign = debt_campaign_live()

    response = api_client().get(f"/api/v1/campaigns/{campaign.pk}/loan-schedule/", {"amount": amount})

    assert "amount" in assert_error(response, 400)["fields"]


def test_a_campaign_that_is_not_a_loan_has_no_preview():
    response = api_client().get(f"/api/v1/campaigns/{LiveCampaignFactory().pk}/loan-schedule/", {"amount": "100"})
    assert_error(response, 404, "no_loan_terms")


def test_a_lender_sees_their_loans_with_what_they_received():
    loan = loan_funded(amounts=[75_000, 25_000])
    loan_repay(loan=loan, actor=loan.borrower, amount=10_000, idempotency_key=str(uuid.uuid4()))
    share = loan.lenders.get(principal=25_000)

    response = api_client(share.lender).get("/api/v1/me/loans/")

    [row] = response.json()
    assert row["loan"] == loan.pk
    assert row["status"] == "repaying"
    assert (row["principal_lent"], row["outstanding"]) == (25_000, 25_000 - row["principal_received"])
    assert row["principal_received"] + row["income_received"] == share.payouts.get().amount
    assert api_client(UserFactory()).get("/api/v1/me/loans/").json() == []


def repay(client, loan, amount, *, key="k-1", card="tok_visa"):
    return client.post(
        f"/api/v1/loans/{loan.pk}/repayments/",
        {"amount": amount, "payment_token": card},
        format="json",
        headers={"Idempotency-Key": key},
    )


def test_the_borrower_repays_by_card_once_per_key_and_the_lenders_are_paid_at_once():
    loan = loan_funded(amounts=[60_000, 40_000])
    client = api_client(loan.borrower)

    response = repay(client, loan, 10_000)
    again = repay(client, loan, 10_000)

    assert response.status_code == 201
    assert again.json() == response.json()
    data = response.json()
    assert data["amount"] == 10_000
    assert data["to_lenders"] == 10_000 - data["fee"]
    assert Repayment.objects.count() == 1
    charges = GatewayOperation.objects.filter(kind=OperationKind.CHARGE, amount=10_000)
    assert charges.count() == 1
    assert sum(p.amount for p in Repayment.objects.get().payouts.all()) == data["to_lenders"]


def test_a_declined_card_pays_nothing():
    loan = loan_funded(amounts=[10_000])

    response = repay(api_client(loan.borrower), loan, 1_000, card="tok_chargeDeclined")

    assert response.status_code == 402
    assert not Repayment.objects.exists()


def test_a_repayment_above_what_is_owed_is_refused_before_any_charge():
    loan = loan_funded(amounts=[10_000])
    owed = sum(i.owed for i in loan.installments.all())

    response = repay(api_client(loan.borrower), loan, owed + 1)

    assert assert_error(response, 400, "amount_above_owed")
    assert not GatewayOperation.objects.filter(kind=OperationKind.CHARGE, amount=owed + 1).exists()


def test_repaying_a_repaid_loan_is_a_409_and_someone_elses_loan_a_404():
    loan = loan_funded(amounts=[10_000])
    owed = sum(i.owed for i in loan.installments.all())
    client = api_client(loan.borrower)
    assert repay(client, loan, owed, key="all").status_code == 201

    assert_error(repay(client, loan, 1, key="more"), 409, "loan_not_payable")
    assert_error(repay(api_client(UserFactory()), loan, 1, key="other"), 404)

"""Re-lending through the pledge endpoint: ``from_balance`` pays a loan from the lender's balance."""

import pytest
from django.core.cache import cache

from crowdfund_site.api.testing import api_client, assert_error
from escrow.models import GatewayOperation, LedgerTransaction
from escrow.vocabulary import charge_key
from pledges.models import Pledge, PledgeStatus
from projects.tests.factories import LiveCampaignFactory
from settlement.verification import ledger_verify

from .factories import debt_campaign_live
from .test_withdrawals import balance_of, lender_with_balance

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def _lend(client, campaign, *, key="lend-1", **body):
    data = {"amount": 1_000, "currency": campaign.currency, **body}
    return client.post(f"/api/v1/campaigns/{campaign.pk}/pledges/", data, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_lender_lends_from_their_balance_without_a_card():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)

    response = _lend(api_client(lender), campaign, amount=balance, from_balance=balance)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["amount"], body["from_balance"]) == (PledgeStatus.HELD, balance, balance)
    assert balance_of(lender) == 0
    assert not GatewayOperation.objects.filter(idempotency_key=charge_key(body["id"])).exists()  # no card charged
    assert ledger_verify() == []


def test_a_lender_pays_part_from_their_balance_and_the_rest_by_card():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)

    response = _lend(api_client(lender), campaign, amount=balance + 300, from_balance=balance, payment_token="tok_visa")

    assert response.status_code == 201, response.content
    pledge = Pledge.objects.get(pk=response.json()["id"])
    assert (pledge.from_balance, pledge.card_amount) == (balance, 300)
    assert balance_of(lender) == 0
    assert ledger_verify() == []


def test_more_than_the_balance_is_a_400_naming_the_field_and_changes_nothing():
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)
    transactions = LedgerTransaction.objects.count()

    response = _lend(api_client(lender), campaign, amount=balance + 1, from_balance=balance + 1)

    body = assert_error(response, 400, "balance_too_small")
    assert "from_balance" in body["fields"]
    assert LedgerTransaction.objects.count() == transactions
    assert not Pledge.objects.filter(campaign=campaign).exists()
    assert balance_of(lender) == balance


@pytest.mark.parametrize("value", ["12", "abc", -1, 1.5, True, None, [], {}, 10**30])
def test_a_bad_from_balance_is_a_clear_400_never_a_500(value):
    lender, balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)

    response = _lend(api_client(lender), campaign, from_balance=value, payment_token="tok_visa")

    body = assert_error(response, 400)
    assert "from_balance" in body["fields"], body
    assert balance_of(lender) == balance


def test_the_rest_without_a_card_is_a_400():
    lender, _balance = lender_with_balance()
    campaign = debt_campaign_live(goal=100_000)

    response = _lend(api_client(lender), campaign, amount=1_000, from_balance=400)

    assert "payment_token" in assert_error(response, 400, "payment_token_required")["fields"]


def test_a_campaign_that_is_no_loan_refuses_payment_from_a_balance():
    lender, _balance = lender_with_balance()
    campaign = LiveCampaignFactory()

    response = _lend(api_client(lender), campaign, from_balance=1_000)

    assert_error(response, 400, "balance_not_accepted")


def test_the_schema_documents_paying_from_the_balance():
    schema = api_client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert schema.status_code == 200
    text = schema.content.decode()
    assert "from_balance" in text
    assert "balance_too_small" in text

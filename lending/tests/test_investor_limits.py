"""Investor limits in the pledge path of debt campaigns: reg_cf (2021 amounts), ecsp, none."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import InvalidInput, NotAllowed
from lending.models import LenderProfile
from lending.services import lender_knowledge_test_take, lender_profile_update, lending_consent_give
from lending.services.investor_limits import KNOWLEDGE_TEST, reg_cf_limit
from pledges.changes import pledge_change
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_cancel
from pledges.tests.factories import VISA, new_key, pledge_held
from projects.tests.factories import LiveCampaignFactory

from .factories import debt_campaign_live

pytestmark = pytest.mark.django_db

DOLLARS = 100  # minor units of a dollar
RIGHT_ANSWERS = {key: right for key, (_q, _c, right) in KNOWLEDGE_TEST.items()}


@pytest.mark.parametrize(
    ("income", "net_worth", "limit"),
    [
        (0, 0, 2_500),  # the floor
        (30_000, 10_000, 2_500),  # 5 % of 30,000 is under the floor
        (80_000, 120_000, 6_000),  # either under 124,000: 5 % of the greater
        (200_000, 100_000, 10_000),  # net worth under the threshold: still 5 % of the greater
        (124_000, 124_000, 12_400),  # both at the threshold: 10 %
        (150_000, 2_000_000, 124_000),  # 10 % of 2,000,000 is capped at 124,000
    ],
)
def test_reg_cf_limits_are_the_2021_rules(income, net_worth, limit):
    assert reg_cf_limit(annual_income=income * DOLLARS, net_worth=net_worth * DOLLARS, currency="USD") == (
        limit * DOLLARS
    )


def _declared(*, income: int, net_worth: int, accredited: bool = False, currency: str = "USD"):
    lender = UserFactory()
    lender_profile_update(
        user=lender,
        accredited=accredited,
        currency=currency,
        annual_income=income * DOLLARS,
        net_worth=net_worth * DOLLARS,
    )
    return lender


def test_reg_cf_counts_what_the_lender_lent_in_the_last_twelve_months(settings):
    settings.LENDING_INVESTOR_POLICY = "reg_cf"
    lender = _declared(income=40_000, net_worth=20_000)  # limit $2,500
    first = debt_campaign_live(goal=1_000_000)
    second = debt_campaign_live(goal=1_000_000)
    pledge_held(campaign=first, backer=lender, amount=2_000 * DOLLARS)

    with pytest.raises(InvalidInput) as refusal:
        pledge_held(campaign=second, backer=lender, amount=501 * DOLLARS)

    assert refusal.value.code == "investor_limit"
    assert "at most $2,500.00 in any 12 months" in refusal.value.message
    assert "You have lent $2,000.00 in that time, so you can lend at most $500.00 more." in refusal.value.message
    assert not Pledge.objects.filter(campaign=second).exists()
    assert pledge_held(campaign=second, backer=lender, amount=500 * DOLLARS).status == PledgeStatus.HELD


def test_reg_cf_forgets_loans_older_than_twelve_months_and_refunded_ones(settings):
    settings.LENDING_INVESTOR_POLICY = "reg_cf"
    lender = _declared(income=40_000, net_worth=20_000)
    old = pledge_held(campaign=debt_campaign_live(goal=1_000_000), backer=lender, amount=2_500 * DOLLARS)
    Pledge.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=366))
    cancelled = pledge_held(campaign=debt_campaign_live(goal=1_000_000), backer=lender, amount=2_500 * DOLLARS)
    pledge_cancel(pledge=cancelled, actor=lender)

    pledge = pledge_held(campaign=debt_campaign_live(goal=1_000_000), backer=lender, amount=2_500 * DOLLARS)

    assert pledge.status == PledgeStatus.HELD


def test_reg_cf_a_larger_pledge_counts_only_its_new_amount(settings):
    settings.LENDING_INVESTOR_POLICY = "reg_cf"
    lender = _declared(income=40_000, net_worth=20_000)
    campaign = debt_campaign_live(goal=1_000_000)
    pledge = pledge_held(campaign=campaign, backer=lender, amount=2_000 * DOLLARS)

    def change(amount):
        return pledge_change(pledge=pledge, actor=lender, amount=amount, payment_token=VISA, idempotency_key=new_key())

    with pytest.raises(InvalidInput, match=r"at most \$2,500\.00"):
        change(2_600 * DOLLARS)
    assert change(2_500 * DOLLARS).amount == 2_500 * DOLLARS


def test_reg_cf_needs_a_declaration_in_the_loan_currency_and_accredited_lenders_have_no_limit(settings):
    settings.LENDING_INVESTOR_POLICY = "reg_cf"
    campaign = debt_campaign_live(goal=100_000_000)
    undeclared = UserFactory()
    euros_only = _declared(income=1_000_000, net_worth=1_000_000, currency="EUR")

    for lender in (undeclared, euros_only):
        with pytest.raises(NotAllowed) as refusal:
            pledge_held(campaign=campaign, backer=lender, amount=100 * DOLLARS)
        assert refusal.value.code == "lender_profile_required"
        assert "Declare them in USD in your lending profile" in refusal.value.message
    accredited = _declared(income=0, net_worth=0, accredited=True)
    assert pledge_held(campaign=campaign, backer=accredited, amount=500_000 * DOLLARS).status == PledgeStatus.HELD


def test_no_policy_and_pledges_to_other_campaigns_ask_nothing_more(settings):
    settings.LENDING_INVESTOR_POLICY = "reg_cf"
    lender = UserFactory()
    plain = LiveCampaignFactory(goal=1_000_000)
    with CaptureQueriesContext(connection) as queries:
        pledge_held(campaign=plain, backer=lender, amount=100_000 * DOLLARS)
    assert not any("lending_" in q["sql"] for q in queries.captured_queries)
    settings.LENDING_INVESTOR_POLICY = "none"
    assert pledge_held(campaign=debt_campaign_live(), backer=lender, amount=500 * DOLLARS).status == PledgeStatus.HELD


def test_ecsp_needs_a_recent_knowledge_test(settings):
    settings.LENDING_INVESTOR_POLICY = "ecsp"
    campaign = debt_campaign_live(goal=1_000_000)
    campaign.currency = "EUR"
    campaign.save(update_fields=["currency"])
    lender = UserFactory()

    with pytest.raises(NotAllowed) as refusal:
        pledge_held(campaign=campaign, backer=lender, amount=100_00)
    assert refusal.value.code == "knowledge_test_required"
    assert not lender_knowledge_test_take(user=lender, answers={**RIGHT_ANSWERS, "loss": "a"})
    assert lender_knowledge_test_take(user=lender, answers=RIGHT_ANSWERS)
    assert pledge_held(campaign=campaign, backer=lender, amount=100_00).status == PledgeStatus.HELD

    LenderProfile.objects.filter(user=lender).update(
        knowledge_test_passed_at=timezone.now() - datetime.timedelta(days=2 * 366)
    )
    with pytest.raises(NotAllowed, match="knowledge test"):
        pledge_held(campaign=debt_campaign_live(), backer=lender, amount=100_00)


def test_ecsp_warns_and_asks_consent_above_the_greater_of_1000_euros_or_5_percent_of_net_worth(settings):
    settings.LENDING_INVESTOR_POLICY = "ecsp"
    campaign = debt_campaign_live(goal=10_000_000)
    campaign.currency = "EUR"
    campaign.save(update_fields=["currency"])
    lender = UserFactory()
    lender_knowledge_test_take(user=lender, answers=RIGHT_ANSWERS)
    lender_profile_update(user=lender, accredited=False, currency="EUR", annual_income=0, net_worth=40_000_00)

    with pytest.raises(NotAllowed) as refusal:
        pledge_held(campaign=campaign, backer=lender, amount=2_001_00)  # 5 % of 40,000 is 2,000
    assert refusal.value.code == "consent_required"
    assert "more than €2,000.00 to one loan" in refusal.value.message
    lending_consent_give(lender=lender, campaign=campaign, amount=2_001_00)

    assert pledge_held(campaign=campaign, backer=lender, amount=2_001_00).status == PledgeStatus.HELD


def test_ecsp_refuses_a_campaign_closing_within_the_four_day_withdrawal_period(settings):
    settings.LENDING_INVESTOR_POLICY = "ecsp"
    campaign = debt_campaign_live()
    campaign.deadline = timezone.now() + datetime.timedelta(days=3)
    campaign.save(update_fields=["deadline"])
    lender = UserFactory()
    lender_knowledge_test_take(user=lender, answers=RIGHT_ANSWERS)

    with pytest.raises(NotAllowed) as refusal:
        pledge_held(campaign=campaign, backer=lender, amount=100_00)

    assert refusal.value.code == "withdrawal_period_too_short"
    assert "withdraw a loan without reason for 4 days" in refusal.value.message


def test_a_bad_declaration_is_refused_and_changes_nothing():
    lender = UserFactory()

    with pytest.raises(InvalidInput):
        lender_profile_update(user=lender, accredited=False, currency="USD", annual_income=-1, net_worth=0)
    with pytest.raises(InvalidInput):
        lender_profile_update(user=lender, accredited=False, currency="XXX", annual_income=1, net_worth=0)

    assert not LenderProfile.objects.filter(user=lender).exists()


def test_the_lender_declares_on_the_profile_page_and_a_refused_pledge_says_why(client, settings):
    settings.LENDING_INVESTOR_POLICY = "reg_cf"
    lender = UserFactory()
    client.force_login(lender)

    bad = client.post(
        "/loans/profile/", {"form": "profile", "currency": "USD", "annual_income": "-5", "net_worth": "1000"}
    )
    assert bad.status_code == 400
    response = client.post(
        "/loans/profile/", {"form": "profile", "currency": "USD", "annual_income": "40000", "net_worth": "20000.00"}
    )
    assert response.status_code == 302
    page = client.get("/loans/profile/").content.decode()
    assert "yearly income $40,000.00, net worth $20,000.00" in page
    assert "the greater of $2,500 or 5 %" in page

    campaign = debt_campaign_live(goal=1_000_000)
    refused = client.post(
        f"/pledges/new/{campaign.slug}/",
        {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", "reward": "", "amount": "3000.00"}
        | {"confirmed_amount": "300000"}
        | {"idempotency_key": new_key()},
    )
    assert "at most $2,500.00 in any 12 months" in refused.content.decode()
    assert not Pledge.objects.filter(campaign=campaign).exists()


def test_the_knowledge_test_and_the_consent_on_the_pages(client, settings):
    settings.LENDING_INVESTOR_POLICY = "ecsp"
    lender = UserFactory()
    client.force_login(lender)
    campaign = debt_campaign_live(goal=10_000_000)
    campaign.currency = "EUR"
    campaign.save(update_fields=["currency"])

    wrong = client.post("/loans/profile/", {"form": "test", **RIGHT_ANSWERS, "spread": "a"})
    assert "Some answers are not right" in wrong.content.decode()
    client.post("/loans/profile/", {"form": "test", **RIGHT_ANSWERS})
    assert "You passed it on" in client.get("/loans/profile/").content.decode()
    assert "Lending a large amount" in client.get(f"/loans/preview/{campaign.slug}/").content.decode()
    unticked = client.post(f"/loans/consent/{campaign.slug}/", {"amount": "5000"})
    assert unticked.status_code == 400
    client.post(f"/loans/consent/{campaign.slug}/", {"amount": "5000", "understood": "on"})

    assert pledge_held(campaign=campaign, backer=lender, amount=5_000_00).status == PledgeStatus.HELD

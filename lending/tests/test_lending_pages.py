"""The lending pages through the test client, in English and Simplified Chinese."""

import csv
import io
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.tests.factories import UserFactory
from lending.services import loan_repay
from projects.tests.factories import LiveCampaignFactory

from .factories import debt_campaign_live, loan_funded

pytestmark = pytest.mark.django_db


def test_the_campaign_page_of_a_loan_links_to_its_schedule_which_shows_rate_term_and_payments(client):
    campaign = debt_campaign_live(rate_bps=1200, term_months=12)

    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "A loan" in page
    assert f"/loans/preview/{campaign.slug}/" in page
    preview = client.get(f"/loans/preview/{campaign.slug}/", {"amount": "1,000"}).content.decode()

    assert "12 %" in preview
    assert "12 months" in preview
    assert "$88.85" in preview
    assert "pays you back $1,066.19 in all, of which $66.19 is interest" in preview


def test_a_bad_amount_is_explained_on_the_page(client):
    campaign = debt_campaign_live()

    response = client.get(f"/loans/preview/{campaign.slug}/", {"amount": "12.345"})

    assert response.status_code == 400
    assert "USD amounts have at most 2 decimals." in response.content.decode()


def test_a_campaign_that_is_not_a_loan_has_no_schedule(client):
    assert client.get(f"/loans/preview/{LiveCampaignFactory().slug}/").status_code == 404


def test_the_schedule_in_chinese(client):
    campaign = debt_campaign_live(rate_bps=600, term_months=6)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    page = client.get(f"/loans/preview/{campaign.slug}/", {"amount": "600"}).content.decode()

    assert "还款计划" in page
    assert "6 个月" in page
    assert "等额本息" in page
    assert "年利率" in page


def test_a_lender_sees_their_loan_in_my_loans_in_english_and_chinese(client):
    loan = loan_funded(amounts=[40_000, 60_000])
    loan_repay(loan=loan, actor=loan.borrower, amount=20_000, idempotency_key=str(uuid.uuid4()))
    share = loan.lenders.get(principal=40_000)
    client.force_login(share.lender)

    page = client.get("/loans/").content.decode()
    assert "My loans" in page
    assert loan.campaign.title in page
    assert "$400.00" in page
    assert "Repaying" in page
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = client.get("/loans/").content.decode()
    assert "我的出借" in page
    assert "还款中" in page


def test_my_loans_needs_sign_in_and_is_empty_for_someone_who_lent_nothing(client):
    assert client.get("/loans/").status_code == 302
    client.force_login(UserFactory())
    assert "You have not lent to any loan yet." in client.get("/loans/").content.decode()


def test_a_lender_downloads_a_yearly_statement_of_what_they_received(client):
    loan = loan_funded(amounts=[40_000, 60_000])
    loan.campaign.title = "=HYPERLINK(1)"
    loan.campaign.save(update_fields=["title"])
    repayment = loan_repay(loan=loan, actor=loan.borrower, amount=20_000, idempotency_key=str(uuid.uuid4()))
    share = loan.lenders.get(principal=40_000)
    payout = share.payouts.get()
    client.force_login(share.lender)
    year = timezone.localdate(repayment.created_at).year

    response = client.get(f"/loans/statement/{year}.csv")

    assert response["Content-Type"].startswith("text/csv")
    header, row = list(csv.reader(io.StringIO(response.content.decode())))
    assert header == ["date", "campaign", "loan", "currency", "principal", "interest_and_fees"]
    assert row[1] == "'=HYPERLINK(1)"  # not a formula in a spreadsheet
    assert row[3:] == ["USD", f"{Decimal(payout.principal).scaleb(-2):f}", f"{Decimal(payout.income).scaleb(-2):f}"]
    empty = client.get(f"/loans/statement/{year - 1}.csv").content.decode().splitlines()
    assert len(empty) == 1
    assert "Realised return" in client.get("/loans/").content.decode()

"""In headless Chromium: an initiator makes a draft a loan and previews its schedule; a lender lends
and finds the loan in My loans; in English and in Chinese. Screenshots go to test-artifacts/."""

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS
from lending.models import LoanTerms
from lending.services import loan_create, loan_repay
from pledges.models import Pledge, PledgeStatus
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory

from .factories import debt_campaign_live

pytestmark = BROWSER_MARKS


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"lending-{name}.png"), full_page=True)


def log_in(page, live_server, user, next_path: str, language: str = "en") -> None:
    # Logging in switches the site to the user's own language.
    user.preferred_language = language
    user.save(update_fields=["preferred_language"])
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct-horse-battery")
    page.press("#id_password", "Enter")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("language", "preview_button", "schedule_heading"),
    [
        ("en", "Preview the loan schedule", "Your repayment schedule"),
        ("zh-hans", "预览还款计划", "您的还款计划"),
    ],
)
def test_an_initiator_sets_loan_terms_and_sees_the_schedule(
    live_server, browser, language, preview_button, schedule_heading
):
    campaign = CampaignFactory(goal=100_000)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    funding = f"/campaigns/{campaign.slug}/edit/funding/"
    log_in(page, live_server, campaign.initiator, funding, language)
    page.check("input[name=funding_model][value=debt]")
    page.fill("#id_loan_rate", "9.5")
    page.fill("#id_loan_term_months", "12")
    page.select_option("#id_loan_repayment_type", "annuity")
    page.fill("#id_loan_grace_months", "0")
    page.click(f"button:has-text('{preview_button}')")
    page.wait_for_selector(f"text={schedule_heading}")
    assert page.locator("#loan-schedule-preview tbody tr").count() == 12
    shot(page, f"01-terms-preview-{language}")
    assert not LoanTerms.objects.filter(campaign=campaign).exists()

    page.press("#id_loan_grace_months", "Enter")  # the form's first button: save and continue
    page.wait_for_url("**/rewards/")
    assert LoanTerms.objects.get(campaign=campaign).rate_bps == 950


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("language", "heading"), [("en", "My loans"), ("zh-hans", "我的出借")])
def test_a_lender_lends_and_sees_the_loan_in_my_loans(live_server, browser, language, heading):
    campaign = debt_campaign_live(goal=5_000)
    lender = UserFactory()
    page = browser.new_page(viewport={"width": 390, "height": 844})
    log_in(page, live_server, lender, f"/pledges/new/{campaign.slug}/", language)
    page.fill("#id_amount", "50")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.press("#id_cvc", "Enter")
    page.wait_for_url("**/pledges/*/?thanks=1")
    assert Pledge.objects.get(backer=lender).status == PledgeStatus.HELD

    campaign.status = CampaignStatus.SUCCEEDED
    campaign.save(update_fields=["status"])
    loan = loan_create(campaign=campaign, start_date=campaign.deadline.date())
    loan_repay(loan=loan, actor=loan.borrower, amount=loan.installments.get(number=1).total, idempotency_key="first")
    page.goto(f"{live_server.url}/loans/")
    page.wait_for_selector(f"h1:has-text('{heading}')")
    row = page.locator("#my-loans tbody tr").first
    assert campaign.title in row.inner_text()
    assert "$50.00" in row.inner_text()
    # The first repayment was paid into the lender's balance, which they may withdraw.
    assert page.locator("#balances-heading").is_visible()
    shot(page, f"02-my-loans-{language}")

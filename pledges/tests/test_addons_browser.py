"""In headless Chromium, in English and Chinese: add add-ons to a pledge, see the total before paying,
find them on the receipt, and take one more through "Manage your pledge". Screenshots go to var/screenshots/."""

from pathlib import Path

import pytest
from django.conf import settings

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.browser import BROWSER_MARKS, log_in
from pledges.models import Pledge, PledgeStatus
from projects.addons import addon_create
from projects.tests.factories import LiveCampaignFactory

pytestmark = BROWSER_MARKS

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
EXPECTED = {
    "en": {
        "total": "Total charged: $30.00",
        "receipt": "2 × Sticker pack ($10.00)",
        "more": "3 × Sticker pack ($15.00)",
    },
    "zh-hans": {"total": "合计扣款：", "receipt": "2 × Sticker pack（$10.00）", "more": "3 × Sticker pack（$15.00）"},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_back_a_campaign_with_add_ons_and_take_one_more(live_server, browser, language):
    expected = EXPECTED[language]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    campaign = LiveCampaignFactory(title="Letterpress cards", goal=100_000)
    sticker = addon_create(campaign=campaign, actor=campaign.initiator, title="Sticker pack", price=500)
    backer = UserFactory(username=f"ana-{language}", preferred_language=language)
    base = live_server.url

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page = context.new_page()
    log_in(page, base, backer.username)

    page.goto(f"{base}/pledges/new/{campaign.slug}/")
    page.fill("#id_amount", "20.00")
    page.fill(f"#id_addon_{sticker.pk}", "2")
    total = page.locator("#pledge-total")
    assert expected["total"] in total.inner_text()
    assert "30.00" in total.inner_text()
    page.screenshot(path=str(SCREENSHOTS / f"addons-{language}-1-total.png"), full_page=True)
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("button[type=submit].button-block")
    page.wait_for_url(f"{base}/pledges/*/?thanks=1")
    assert expected["receipt"] in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOTS / f"addons-{language}-2-receipt.png"), full_page=True)

    pledge = Pledge.objects.get()
    assert (pledge.status, pledge.amount, pledge.addons_amount) == (PledgeStatus.HELD, 3_000, 1_000)
    page.goto(f"{base}/pledges/{pledge.pk}/manage/")
    assert page.input_value("#id_amount") == "20.00"  # the pledge without its add-ons
    page.fill(f"#id_addon_{sticker.pk}", "3")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("main form button[type=submit][data-busy]")
    page.wait_for_url(f"{base}/pledges/{pledge.pk}/")
    assert expected["more"] in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOTS / f"addons-{language}-3-more.png"), full_page=True)
    pledge.refresh_from_db()
    assert (pledge.amount, pledge.addons_amount) == (3_500, 1_500)

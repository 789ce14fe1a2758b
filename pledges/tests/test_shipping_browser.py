"""In headless Chromium, in English and Chinese: back a physical reward, see the shipping and the total
before paying, be told a country it does not ship to, and find the whole on the receipt. Screenshots
go to var/screenshots/. Then manage a pledge onto a physical reward: the country asked, what the
reward needs with its shipping said, and the shipping in the receipt and its history."""

from pathlib import Path

import pytest
from django.conf import settings

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.browser import BROWSER_MARKS, log_in
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_held
from projects.models import RewardShippingRule
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

pytestmark = BROWSER_MARKS

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "correct-horse-battery"
# What the page says, by language: the shipping line for France, the total, and the refusal for the US.
EXPECTED = {
    "en": {
        "shipping": "Shipping to France: $9.00",
        "total": "Total charged: $34.00",
        "nowhere": "This reward does not ship to United States.",
        "refused": "does not ship to United States",
        "receipt": "(including $9.00 shipping to France)",
        "pledge": "Pledge",
    },
    "zh-hans": {
        "shipping": "寄往法国的运费：",
        "total": "合计扣款：",
        "nowhere": "此回报不寄送到美国。",
        "refused": "回报不寄送到美国",
        "receipt": "（含寄往法国的运费 $9.00）",
        "pledge": "支持",
    },
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_back_a_physical_reward_with_shipping(live_server, browser, language):
    expected = EXPECTED[language]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    campaign = LiveCampaignFactory(title="Enamel mugs", goal=100_000)
    RewardTierFactory(campaign=campaign, title="Thank-you e-mail", minimum_amount=500)
    mug = RewardTierFactory(campaign=campaign, title="Enamel mug", minimum_amount=2_500, ships=True)
    RewardShippingRule.objects.bulk_create(
        [
            RewardShippingRule(reward=mug, destination="DE", cost=500),
            RewardShippingRule(reward=mug, destination="eu", cost=900),
            RewardShippingRule(reward=mug, destination="north_america", cost=1_500),
        ]
    )
    # The US is in North America: take it out, so there is a country this reward does not ship to.
    RewardShippingRule.objects.filter(reward=mug, destination="north_america").update(destination="CA")
    backer = UserFactory(username=f"mei-{language}", preferred_language=language)
    base = live_server.url

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", backer.username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{base}/pledges/new/{campaign.slug}/")
    shipping_field = page.locator("[data-shipping-field]")
    assert shipping_field.is_hidden()  # no reward chosen: nothing ships
    page.check(f"input[name=reward][value='{mug.pk}']")
    assert shipping_field.is_visible()
    assert page.input_value("#id_amount") == "25.00"

    page.select_option("#id_shipping_country", "US")
    total = page.locator("#pledge-total")
    assert total.inner_text() == expected["nowhere"]
    page.select_option("#id_shipping_country", "FR")
    assert expected["shipping"] in total.inner_text()
    assert expected["total"] in total.inner_text()
    assert "34.00" in total.inner_text()
    page.screenshot(path=str(SCREENSHOTS / f"shipping-{language}-1-total.png"), full_page=True)

    # The server has the last word: a country chosen by hand that the reward does not ship to.
    page.select_option("#id_shipping_country", "US")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("button[type=submit].button-block")
    page.wait_for_selector(".alert-error")
    assert expected["refused"] in page.content()
    assert not Pledge.objects.exists()
    page.screenshot(path=str(SCREENSHOTS / f"shipping-{language}-2-refused.png"), full_page=True)

    page.select_option("#id_shipping_country", "FR")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("button[type=submit].button-block")
    page.wait_for_url(f"{base}/pledges/*/?thanks=1")
    assert expected["receipt"] in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOTS / f"shipping-{language}-3-receipt.png"), full_page=True)

    pledge = Pledge.objects.get()
    assert (pledge.status, pledge.amount, pledge.shipping_country, pledge.shipping_amount) == (
        PledgeStatus.HELD,
        3_400,
        "FR",
        900,
    )


# What the manage page and the receipt say after moving a pledge to the mug, by language.
CHANGE_EXPECTED = {
    "en": {
        "note": "the amount includes its shipping to the country you choose",
        "short": "at least $25.00 plus $9.00 shipping to France: $34.00 in all",
        "receipt": "(including $9.00 shipping to France)",
        "history": "shipping: no shipping → $9.00 to France",
    },
    "zh-hans": {
        "note": "金额包含寄往你所选国家的运费",
        "short": "另加寄往法国的运费 $9.00：合计 $34.00",
        "receipt": "（含寄往法国的运费 $9.00）",
        "history": "运费：无运费 → 寄往法国 $9.00",
    },
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_manage_a_pledge_onto_a_physical_reward_with_shipping(live_server, browser, language):
    expected = CHANGE_EXPECTED[language]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    campaign = LiveCampaignFactory(title="Enamel mugs", goal=100_000)
    email = RewardTierFactory(campaign=campaign, title="Thank-you e-mail", minimum_amount=500)
    mug = RewardTierFactory(campaign=campaign, title="Enamel mug", minimum_amount=2_500, ships=True)
    RewardShippingRule.objects.create(reward=mug, destination="eu", cost=900)
    backer = UserFactory(username=f"lin-{language}", preferred_language=language)
    pledge = pledge_held(campaign=campaign, backer=backer, amount=1_000, reward=email)
    base = live_server.url

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page = context.new_page()
    log_in(page, base, backer.username, next_path=f"/pledges/{pledge.pk}/manage/")

    assert expected["note"] in page.inner_text("main")
    page.select_option("#id_reward", str(mug.pk))
    page.select_option("#id_shipping_country", "FR")
    page.fill("#id_amount", "25.00")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("main form button[type=submit]")
    page.wait_for_selector(".has-error")
    assert expected["short"] in page.inner_text("main")
    pledge.refresh_from_db()
    assert (pledge.reward_id, pledge.amount) == (email.pk, 1_000)
    page.screenshot(path=str(SCREENSHOTS / f"shipping-change-{language}-1-short.png"), full_page=True)

    page.fill("#id_amount", "34.00")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "123")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/pledges/{pledge.pk}/")
    assert expected["receipt"] in page.inner_text("main")
    page.click(".pledge-history summary")
    assert expected["history"] in page.inner_text(".pledge-history")
    page.screenshot(path=str(SCREENSHOTS / f"shipping-change-{language}-2-receipt.png"), full_page=True)

    pledge.refresh_from_db()
    assert (pledge.reward_id, pledge.amount, pledge.shipping_country, pledge.shipping_amount) == (
        mug.pk,
        3_400,
        "FR",
        900,
    )

"""In headless Chromium, in English and Chinese: a visitor sees no stretch goals while the goal is
not reached, sees them once it is, and sees one marked unlocked once the total passes it."""

import pytest

from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS
from pledges.tests.factories import pledge_held
from projects.stretch_goals import stretch_goal_create, stretch_goals_unlock_due
from projects.tests.factories import LiveCampaignFactory

pytestmark = BROWSER_MARKS

EXPECTED = {
    "en": {"heading": "Stretch goals", "unlocked": "Unlocked", "to_go": "{} to go"},
    "zh-hans": {"heading": "扩展目标", "unlocked": "已解锁", "to_go": "还差 {}"},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_visitor_sees_stretch_goals_once_the_goal_is_reached_and_one_unlocked_once_passed(
    live_server, browser, language
):
    expected = EXPECTED[language]
    campaign = LiveCampaignFactory(title="Pocket telescopes", goal=10_000)  # $100.00
    first = stretch_goal_create(
        campaign=campaign, actor=campaign.initiator, amount=15_000, title="Carry case", description="Padded."
    )
    second = stretch_goal_create(campaign=campaign, actor=campaign.initiator, amount=40_000, title="Star atlas")
    pledge_held(campaign=campaign, amount=6_000)  # $60.00 of $100.00
    base = live_server.url

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page = context.new_page()
    page.goto(f"{base}{campaign.get_absolute_url()}")
    page.wait_for_selector("h1:has-text('Pocket telescopes')")
    assert page.locator("#stretch-goals").count() == 0
    assert page.locator("text=Carry case").count() == 0

    pledge_held(campaign=campaign, amount=6_000)  # $120.00: the goal is reached, no stretch goal yet
    stretch_goals_unlock_due()  # beat's step; nothing to unlock
    page.reload()
    section = page.locator("#stretch-goals")
    section.wait_for()
    assert section.locator("h2").inner_text() == expected["heading"]
    first_item, second_item = page.locator(f"#stretch-goal-{first.pk}"), page.locator(f"#stretch-goal-{second.pk}")
    assert "Carry case" in first_item.inner_text()
    assert "Padded." in first_item.inner_text()
    assert expected["to_go"].format("$30.00") in first_item.inner_text()
    assert expected["to_go"].format("$280.00") in second_item.inner_text()
    assert page.locator(".stretch-goal.is-unlocked").count() == 0

    pledge_held(campaign=campaign, amount=5_000)  # $170.00: past the first stretch goal
    stretch_goals_unlock_due()
    page.reload()
    first_item.wait_for()
    assert "is-unlocked" in first_item.get_attribute("class")
    assert first_item.locator(".pill").inner_text() == expected["unlocked"]
    assert expected["to_go"].format("$30.00") not in first_item.inner_text()
    assert "is-unlocked" not in second_item.get_attribute("class")
    assert expected["to_go"].format("$230.00") in second_item.inner_text()
    page.screenshot(path=str(ARTIFACTS / f"stretch-goals-{language}.png"), full_page=True)
    context.close()

"""Browser journeys in headless Chromium (Debian's): a Markdown story with its preview, verifying
an e-mail address, and the campaign page on a 390 px phone; each in English and Chinese, with
screenshots in test-artifacts/."""

import re

import pytest
from django.core import mail

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, log_in
from projects.models import Campaign
from projects.tests.factories import CampaignFactory, LiveCampaignFactory

pytestmark = [*BROWSER_MARKS, pytest.mark.slow]
LANGUAGES = {"en": "en", "zh-hans": "zh-hans"}


def shot(page, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(ARTIFACTS / f"story-{name}.png"), full_page=full_page)


def new_page(browser, base: str, language: str, **kwargs):
    context = browser.new_context(**kwargs)
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    return context.new_page()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_write_a_markdown_story_and_preview_it(live_server, browser, language):
    base = live_server.url
    # Logging in switches to the person's own language, so theirs is the one under test.
    initiator = UserFactory(username="ivy", preferred_language=language)
    campaign = CampaignFactory(initiator=initiator, description="", risks="")
    page = new_page(browser, base, language, viewport={"width": 1280, "height": 900})
    story = f"/campaigns/{campaign.slug}/edit/story/"
    log_in(page, base, "ivy", story)
    page.fill(
        "#id_description", "# Why dice\n\nTwelve **tiles**.\n\n- two heroes\n- one dungeon\n\n<script>alert(1)</script>"
    )
    page.fill("#id_risks", "The printer *could* be late.")
    page.click("[data-preview-button]")
    preview = page.locator("#markdown-preview")
    preview.wait_for()
    assert preview.locator("h3", has_text="Why dice").count() == 1
    assert preview.locator("strong", has_text="tiles").count() == 1
    assert preview.locator("li").count() == 2
    assert preview.locator("script").count() == 0
    assert "<script>alert(1)</script>" in preview.inner_text()  # shown as text, never run
    assert page.url == base + story  # in place, nothing saved yet
    campaign.refresh_from_db()
    assert campaign.description == ""
    shot(page, f"markdown-preview-{language}")
    page.click("main button[type=submit]:not([data-preview-button])")
    # Saved, on to the next step of the form: the pictures.
    page.wait_for_url(re.compile(r".*/pictures/$"))
    campaign.refresh_from_db()
    assert "<h3>Why dice</h3>" in campaign.description_html
    page.goto(base + campaign.get_absolute_url())
    assert page.locator(".story h3", has_text="Why dice").count() == 1
    shot(page, f"markdown-story-page-{language}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_verify_an_email_address(live_server, browser, language):
    base = live_server.url
    page = new_page(browser, base, language, viewport={"width": 1280, "height": 900})
    page.goto(base + "/accounts/signup/")
    page.fill("#id_username", "lin")
    page.fill("#id_email", "lin@example.com")
    page.fill("#id_password1", "analytical-engine-1843")
    page.fill("#id_password2", "analytical-engine-1843")
    page.click("main button[type=submit]")
    page.wait_for_url(base + "/")
    page.goto(base + "/accounts/profile/")
    assert page.locator(".alert-warn form button").count() == 1  # "send the link again"
    assert page.locator(".badge-verified").count() == 0
    shot(page, f"verify-profile-before-{language}")
    (message,) = mail.outbox
    link = re.search(r"https?://\S+/accounts/verify/\S+/", message.body).group(0)
    page.goto(base + "/accounts/" + link.split("/accounts/", 1)[1])
    assert page.locator("h1").count() == 1
    assert page.locator(".badge-verified").count() == 1
    shot(page, f"verify-done-{language}")
    page.goto(base + "/accounts/profile/")
    assert page.locator(".badge-verified").count() == 1
    assert page.locator(".alert-warn").count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_campaign_page_on_a_390px_phone(live_server, browser, language):
    base = live_server.url
    campaign = LiveCampaignFactory(
        title="Tiny Dungeon",
        pledged_amount=62_500,
        goal=100_000,
        backer_count=25,
        description="\n\n".join(["A paragraph of the story that goes on for a while."] * 40),
    )
    Campaign.objects.filter(pk=campaign.pk).update(description_html=f"<p>{'Story. ' * 600}</p>")
    page = new_page(browser, base, language, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(base + campaign.get_absolute_url())
    bar = page.locator(".back-bar")
    assert bar.is_visible()
    box = bar.bounding_box()
    assert box["y"] + box["height"] == pytest.approx(844, abs=2)  # on the bottom edge of the screen
    assert "$625.00" in bar.inner_text()
    assert "62%" in bar.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    shot(page, f"mobile-top-{language}", full_page=False)
    page.mouse.wheel(0, 3000)
    page.wait_for_timeout(200)
    box = bar.bounding_box()
    assert box["y"] + box["height"] == pytest.approx(844, abs=2)  # still there after scrolling
    shot(page, f"mobile-scrolled-{language}", full_page=False)
    # The header's links fold behind the menu button.
    menu = page.locator("[data-menu-button]")
    nav = page.locator("#site-nav")
    assert menu.is_visible()
    assert not nav.is_visible()
    menu.click()
    assert nav.is_visible()
    assert menu.get_attribute("aria-expanded") == "true"
    page.mouse.wheel(0, -5000)
    shot(page, f"mobile-menu-open-{language}", full_page=False)
    bar.locator("a.button").click()
    page.wait_for_url(re.compile(r".*/pledge.*|.*/login/.*"))


@pytest.mark.django_db(transaction=True)
def test_the_phone_bar_is_not_shown_on_a_wide_screen(live_server, browser):
    campaign = LiveCampaignFactory()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + campaign.get_absolute_url())
    assert not page.locator(".back-bar").is_visible()
    assert not page.locator("[data-menu-button]").is_visible()
    assert page.locator("#site-nav").is_visible()

"""In headless Chromium: a backer arrives by a tagged link, follows the creator and asks to be
reminded; the initiator makes a link and reads the referral report with its chart."""

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, log_in
from projects.tests.factories import LiveCampaignFactory
from promotion.models import Follow, Notice, NoticeKind
from promotion.services import referral_link_create

pytestmark = BROWSER_MARKS


@pytest.fixture(autouse=True)
def _clicks_stored_at_once(settings):
    # These tests read the report right after the clicks: with the in-memory cache each click is
    # stored at once; the Redis buffer beat copies from has its own tests (test_visit_buffer.py).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.mark.django_db(transaction=True)
def test_a_backer_follows_and_asks_to_be_reminded_and_the_initiator_reads_the_referral_report(live_server, browser):
    initiator = UserFactory(username="ines", display_name="Ines")
    campaign = LiveCampaignFactory(initiator=initiator, title="Night Sky Kit")
    referral_link_create(campaign=campaign, actor=initiator, tag="newsletter")
    backer = UserFactory(username="bo")
    base = live_server.url

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/campaigns/{campaign.slug}/?ref=newsletter&utm_source=mail")
    page.wait_for_selector("text=Log in to be reminded or to follow the creator")
    log_in(page, base, backer.username)
    page.goto(f"{base}/campaigns/{campaign.slug}/")
    page.click("text=Remind me")
    page.wait_for_selector("text=We will e-mail you 48 hours before the campaign ends.")
    page.click("text=Follow Ines")
    page.wait_for_selector("text=You follow Ines")
    page.wait_for_selector("text=Following Ines (stop)")
    page.wait_for_selector("text=Reminder set (cancel)")
    page.screenshot(path=str(ARTIFACTS / "promotion-backer-follows.png"), full_page=True)
    page.goto(f"{base}/pledges/new/{campaign.slug}/")  # opens the form, then leaves: a dropped pledge
    page.close()
    assert Follow.objects.filter(follower=backer, creator=initiator).exists()
    assert Notice.objects.filter(user=backer, campaign=campaign, kind=NoticeKind.ENDING).exists()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, base, initiator.username)
    page.goto(f"{base}/campaigns/{campaign.slug}/dashboard/referrals/")
    page.fill("#id_tag", "<b>bad</b>")
    page.click("text=Make the link")
    page.wait_for_selector("text=A tag may only use letters")
    page.fill("#id_tag", "podcast")
    page.click("text=Make the link")
    page.wait_for_selector("text=Link “podcast” made.")
    row = page.locator('tr[data-tag="newsletter"]')
    cells = row.locator("td").all_inner_texts()
    assert cells[1:5] == ["1", "1", "0", "1"]  # clicks, sessions, pledges, dropped
    assert "utm_source=mail" in cells[6]
    assert page.locator("figure.chart svg rect").count() >= 2
    assert page.locator(f"text={base}/campaigns/{campaign.slug}/?ref=podcast").count() == 1
    page.screenshot(path=str(ARTIFACTS / "promotion-referral-report.png"), full_page=True)
    page.close()

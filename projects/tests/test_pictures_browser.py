"""In headless Chromium: an initiator uploads a cover and a gallery picture, is told why a text file
named .jpg is refused, and sees the pictures load on the campaign page. Screenshots go to
test-artifacts/."""

import pytest

from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, log_in
from projects.tests.factories import CampaignFactory
from projects.tests.pictures import picture_bytes

pytestmark = BROWSER_MARKS


def _loaded(page, selector: str) -> bool:
    return page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0")


@pytest.mark.django_db(transaction=True)
def test_initiator_uploads_a_cover_and_a_gallery_picture(live_server, browser, settings, tmp_path):
    settings.SERVE_MEDIA = True  # as in development: the app serves the stored sizes
    campaign = CampaignFactory(title="Tiny Dungeon", cover={})
    cover, photo, fake = tmp_path / "cover.jpg", tmp_path / "table.png", tmp_path / "notes.jpg"
    cover.write_bytes(picture_bytes(2400, 1600))
    photo.write_bytes(picture_bytes(1200, 900, "PNG"))
    fake.write_text("These are my notes, not a picture.\n" * 10)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, campaign.initiator.username, f"/campaigns/{campaign.slug}/pictures/")
    page.wait_for_selector("text=No cover yet.")

    page.set_input_files("#id_cover-image", str(fake))
    page.fill("#id_cover-alt", "My notes")
    page.click("text=Upload the cover")
    page.wait_for_selector("text=This file is not a JPEG, PNG or WebP picture.")
    page.screenshot(path=str(ARTIFACTS / "pictures-refused.png"), full_page=True)

    page.set_input_files("#id_cover-image", str(cover))
    page.fill("#id_cover-alt", "The tin and twelve tiles on a café table")
    page.click("text=Upload the cover")
    page.wait_for_selector("text=Cover saved.")
    page.set_input_files("#id_gallery-image", str(photo))
    page.fill("#id_gallery-alt", "Two heroes in the first room")
    page.click("text=Add to the gallery")
    page.wait_for_selector("text=Picture added to the gallery.")
    page.screenshot(path=str(ARTIFACTS / "pictures-uploaded.png"), full_page=True)

    page.goto(f"{live_server.url}{campaign.get_absolute_url()}")
    cover_img = "img[alt='The tin and twelve tiles on a café table']"
    gallery_img = "img[alt='Two heroes in the first room']"
    page.wait_for_selector(cover_img)
    page.locator(gallery_img).scroll_into_view_if_needed()
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0 }",
        arg=gallery_img,
    )
    assert _loaded(page, cover_img)
    # Chromium picked the WebP size for the cover.
    assert page.eval_on_selector(cover_img, "img => img.currentSrc").endswith(".webp")
    page.screenshot(path=str(ARTIFACTS / "pictures-campaign-page.png"), full_page=True)

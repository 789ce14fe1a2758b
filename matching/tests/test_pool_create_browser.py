"""In headless Chromium: a sponsor puts up a pool, is told what is wrong, pays it and lands on its dashboard."""

import pytest

from crowdfund_site.tests.browser import BROWSER_MARKS, log_in
from matching.models import Pool
from matching.selectors import pool_balance
from matching.tests.factories import sponsor_create
from projects.tests.factories import CategoryFactory
from settlement.verification import ledger_verify

pytestmark = BROWSER_MARKS


@pytest.mark.django_db(transaction=True)
def test_a_sponsor_puts_up_a_pool_in_the_browser(live_server, browser):
    sponsor = sponsor_create(username="harbour")
    category = CategoryFactory(name="Music")
    base = live_server.url

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, base, sponsor.username)

    page.goto(f"{base}/matching/")
    page.click("text=Put up a matching pool")
    page.fill("#id_name", "Harbour fund")
    page.fill("#id_amount", "5,000.00")
    page.select_option("#id_mode", "pro_rata")
    page.fill("#id_per_campaign_cap", "6,000.00")
    page.check(f"input[name=categories][value='{category.pk}']")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.click("#pool-form button[type=submit]")
    page.wait_for_load_state()
    assert "A cap of $6,000.00 is more than the pool, $5,000.00." in page.inner_text("main")
    assert not Pool.objects.exists()

    page.fill("#id_per_campaign_cap", "1,000.00")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.click("#pool-form button[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert "Your pool is funded and public." in page.inner_text("main")
    pool = Pool.objects.get()
    assert (pool.sponsor_id, pool.amount, pool.per_campaign_cap, pool_balance(pool=pool)) == (
        sponsor.pk,
        500_000,
        100_000,
        500_000,
    )
    assert ledger_verify() == []

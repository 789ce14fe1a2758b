"""In headless Chromium: typing an amount in the pledge form updates the live matching estimate."""

import re

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.money import format_amount
from crowdfund_site.tests.browser import BROWSER_MARKS, log_in
from matching.selectors import match_estimates
from matching.tests.factories import funded_pool, open_round
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory

pytestmark = BROWSER_MARKS


@pytest.mark.django_db(transaction=True)
def test_typing_an_amount_updates_the_estimate(live_server, browser):
    a = LiveCampaignFactory(title="Street choir")
    b = LiveCampaignFactory(title="Tool library")
    pool = funded_pool(name="City culture fund", amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    backer = UserFactory(username="mei")
    (for_10,) = match_estimates(campaign=b, amount=1_000, backer_id=backer.pk)
    (for_40,) = match_estimates(campaign=b, amount=4_000, backer_id=backer.pk)
    assert for_40.high > for_10.high
    base = live_server.url

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, base, backer.username)

    page.goto(f"{base}/pledges/new/{b.slug}/")
    estimate = page.locator(".pledge-form [data-match-estimate]")
    # Before anything is typed: the estimate for 10.00.
    assert f"your $10.00 adds about {format_amount(for_10.low, 'USD')} to {format_amount(for_10.high, 'USD')}" in (
        estimate.inner_text()
    )
    page.fill("#id_amount", "40")
    expected = f"your $40.00 adds about {format_amount(for_40.low, 'USD')} to {format_amount(for_40.high, 'USD')}"
    page.wait_for_function(
        "text => document.querySelector('.pledge-form [data-match-estimate]').innerText.includes(text)",
        arg=expected,
        timeout=10_000,
    )
    text = page.locator(".pledge-form [data-match-estimate]").inner_text()
    assert "It can fall as others give" in text
    assert re.search(r"City culture fund", text)
    # A half-typed amount keeps the last estimate.
    page.fill("#id_amount", "4,")
    page.wait_for_timeout(800)
    assert expected in page.locator(".pledge-form [data-match-estimate]").inner_text()

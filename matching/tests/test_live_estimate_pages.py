"""The live estimate where backers decide: the campaign page and the pledge form."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.money import format_amount
from matching.selectors import MatchingLine, campaign_matching_line, match_estimates, open_rounds_refresh_standing
from matching.services import round_create, round_end
from matching.tests.factories import funded_pool, open_round
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_round():
    a = LiveCampaignFactory(title="Street choir")
    b = LiveCampaignFactory(title="Tool library")
    pool = funded_pool(name="City culture fund", amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    return pool, matching_round, a, b


def _line(pool, amount: int, low: int, high: int) -> str:
    return (
        f'Matched by <a href="/matching/{pool.slug}/">{pool.name}</a>: your {format_amount(amount, "USD")} adds about '
        f"<strong>{format_amount(low, 'USD')} to {format_amount(high, 'USD')}</strong> of matching."
    )


def test_the_campaign_page_shows_what_10_adds_as_a_range_that_can_fall(client, running_round):
    pool, _round, _a, b = running_round
    (estimate,) = match_estimates(campaign=b, amount=1_000)
    assert 0 < estimate.low < estimate.high == 38_705 - 25_000  # as test_pages works out
    page = client.get(b.get_absolute_url()).content.decode()
    assert _line(pool, 1_000, estimate.low, estimate.high) in page
    assert "It can fall as others give" in page


def test_the_campaign_page_estimate_in_chinese(client, running_round):
    pool, _round, _a, b = running_round
    client.cookies["django_language"] = "zh-hans"
    page = client.get(b.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f'<a href="/matching/{pool.slug}/">{pool.name}</a> 配捐：您的 $10.00 约可带来' in page
    assert "配捐金额可能下降" in page


@pytest.mark.parametrize("round_elsewhere", [False, True])
def test_a_campaign_in_no_open_round_pays_no_query_for_rounds(client, round_elsewhere, django_assert_num_queries):
    """The matched-by line's one allocations query also finds the open rounds: one query in all."""
    campaign = LiveCampaignFactory()
    if round_elsewhere:
        open_round(funded_pool(campaigns=[LiveCampaignFactory()]))
    with django_assert_num_queries(1):
        assert campaign_matching_line(campaign=campaign) == MatchingLine(matches=[], open_round_ids=[])
    assert "adds about" not in client.get(campaign.get_absolute_url()).content.decode()


def test_the_line_of_a_campaign_in_a_round_finds_it_in_the_same_query(running_round, django_assert_num_queries):
    _pool, matching_round, _a, b = running_round
    with django_assert_num_queries(1):
        assert campaign_matching_line(campaign=b) == MatchingLine(matches=[], open_round_ids=[matching_round.pk])


def test_the_initiator_sees_no_estimate_of_their_own_campaign(client, running_round):
    _pool, _round, _a, b = running_round
    client.force_login(b.initiator)
    assert "adds about" not in client.get(b.get_absolute_url()).content.decode()


def test_the_estimate_goes_when_the_round_ends(client, running_round):
    _pool, matching_round, _a, b = running_round
    assert "adds about" in client.get(b.get_absolute_url()).content.decode()
    round_end(matching_round=matching_round, now=matching_round.ends_at + timedelta(seconds=1))
    assert "adds about" not in client.get(b.get_absolute_url()).content.decode()


def test_a_round_that_has_not_started_shows_no_estimate_yet(client):
    later = LiveCampaignFactory()
    pool = funded_pool(campaigns=[later], name="Later fund")
    now = timezone.now()
    round_create(pool=pool, actor=pool.sponsor, starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2))
    assert "adds about" not in client.get(later.get_absolute_url()).content.decode()


def test_the_pledge_form_shows_the_estimate_for_the_amount_without_javascript(client, running_round):
    pool, _round, _a, b = running_round
    client.force_login(UserFactory())
    url = reverse("pledges:create", args=[b.slug])
    page = client.get(url).content.decode()
    (default,) = match_estimates(campaign=b, amount=1_000)
    assert _line(pool, 1_000, default.low, default.high) in page
    assert f'data-match-estimate="{reverse("matching:match_estimate", args=[b.slug])}"' in page
    # A reward chosen fills in its price: the estimate is for that amount.
    reward = RewardTierFactory(campaign=b, minimum_amount=4_000)
    (for_reward,) = match_estimates(campaign=b, amount=4_000)
    assert (
        _line(pool, 4_000, for_reward.low, for_reward.high) in client.get(url, {"reward": reward.pk}).content.decode()
    )


def test_the_estimate_json_carries_the_block_the_form_puts_in_place(client, running_round):
    pool, _round, _a, b = running_round
    answer = client.get(reverse("matching:match_estimate", args=[b.slug]), {"amount": "25"}).json()
    (estimate,) = match_estimates(campaign=b, amount=2_500)
    assert _line(pool, 2_500, estimate.low, estimate.high) in answer["html"]
    assert "data-match-estimate" in answer["html"]


# --- The pool page during an open round -------------------------------------------------------


def _rows(page: str) -> list[list[str]]:
    table = page[page.index("Live allocation") :]
    table = table[: table.index("</table>")]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        if "<td>" in row
    ]


def test_the_pool_page_shows_the_live_allocation_of_its_open_round(client, running_round):
    pool, _round, a, _b = running_round
    page = client.get(reverse("matching:pool_detail", args=[pool.slug])).content.decode()
    # Weights 300.00 : 100.00 of 1,000.00, no cap reached (test_pages works them out).
    assert _rows(page) == [
        ["Street choir", "4", "$100.00", "$750.00", "No"],
        ["Tool library", "2", "$100.00", "$250.00", "No"],
    ]
    assert f'href="{a.get_absolute_url()}"' in page
    assert "Money left" in page
    assert "Time left" in page
    assert "The results are published when the round ends." not in page


def test_the_live_table_says_which_campaigns_are_at_the_cap(client):
    a = LiveCampaignFactory(title="Street choir")
    b = LiveCampaignFactory(title="Tool library")
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=60_000)
    open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    page = client.get(reverse("matching:pool_detail", args=[pool.slug])).content.decode()
    assert _rows(page) == [
        ["Street choir", "4", "$100.00", "$600.00", "Yes, at the cap"],
        ["Tool library", "2", "$100.00", "$400.00", "No"],
    ]


def test_the_live_table_follows_the_cached_standing_the_estimates_use(client, running_round):
    pool, _matching_round, a, _b = running_round
    url = reverse("matching:pool_detail", args=[pool.slug])
    client.get(url)
    pledge_held(campaign=a, amount=2_500)
    assert _rows(client.get(url).content.decode())[0][1] == "4"  # cached, as the estimates are
    open_rounds_refresh_standing()
    assert _rows(client.get(url).content.decode())[0][1] == "5"


def test_the_live_table_in_chinese(client, running_round):
    pool, _round, _a, _b = running_round
    client.cookies["django_language"] = "zh-hans"
    page = client.get(reverse("matching:pool_detail", args=[pool.slug]), HTTP_ACCEPT_LANGUAGE="zh-hans").content
    assert "实时分配" in page.decode()
    assert "预计配捐" in page.decode()


def test_the_campaign_page_links_its_matched_by_line_to_the_pool_while_the_round_is_open(client, running_round):
    pool, _round, a, _b = running_round
    page = client.get(a.get_absolute_url()).content.decode()
    assert f'Matched by <a href="{reverse("matching:pool_detail", args=[pool.slug])}">{pool.name}</a>' in page


def test_a_campaign_at_the_pools_cap_says_a_gift_adds_no_matching_instead_of_a_range_of_zeros(client):
    a = LiveCampaignFactory(title="Street choir")
    b = LiveCampaignFactory(title="Tool library")
    # Both campaigns' shares of 1,000.00 are far over the 50.00 cap, so one more gift moves nothing.
    pool = funded_pool(name="City culture fund", amount=100_000, campaigns=[a, b], per_campaign_cap=5_000)
    open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    open_rounds_refresh_standing()
    (estimate,) = match_estimates(campaign=b, amount=1_000)
    assert (estimate.low, estimate.high) == (0, 0)

    page = client.get(b.get_absolute_url()).content.decode()
    assert (
        f'Matched by <a href="/matching/{pool.slug}/">{pool.name}</a>: your $10.00 would add no matching at the moment.'
    ) in page
    assert "$0.00 to $0.00" not in page
    answer = client.get(reverse("matching:match_estimate", args=[b.slug]), {"amount": "10.00"}).json()
    assert answer["estimates"][0]["text"] == f"Matched by {pool.name}: your $10.00 would add no matching at the moment."

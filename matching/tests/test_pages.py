"""The public pool page and the "matched by" line on a campaign's page."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from matching.models import PoolMode, Round, RoundStatus
from matching.selectors import campaigns_matched_by
from matching.services import round_end, round_publish
from matching.tests.factories import funded_pool, open_round
from matching.tests.test_services import pay
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.test_settlement import close_and_settle

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_round():
    a = LiveCampaignFactory(title="Street choir")
    b = LiveCampaignFactory(title="Tool library")
    pool = funded_pool(name="City culture fund", amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    return pool, pay(matching_round), a, b


def test_the_pool_page_shows_the_rules_and_each_campaigns_match(client, paid_round):
    pool, _round, _a, _b = paid_round
    page = client.get(reverse("matching:pool_detail", args=[pool.slug])).content.decode()
    assert "City culture fund" in page
    assert "Quadratic funding" in page
    assert "Street choir" in page
    assert "$750.00" in page
    assert "$250.00" in page
    assert "$0.00" in page  # left in the pool


def test_an_unfunded_or_unknown_pool_is_a_404(client):
    assert client.get(reverse("matching:pool_detail", args=["nope"])).status_code == 404


def test_the_campaign_page_says_who_matched_it_and_how_much(client, paid_round):
    pool, _round, a, _b = paid_round
    page = client.get(a.get_absolute_url()).content.decode()
    assert f"Matched by {pool.sponsor.public_name}" in page
    assert "$750.00" in page
    assert reverse("matching:pool_detail", args=[pool.slug]) in page


def test_the_matches_of_many_campaigns_are_read_together(paid_round, django_assert_num_queries):
    pool, _round, a, b = paid_round
    unmatched = LiveCampaignFactory()
    with django_assert_num_queries(2):
        matches = campaigns_matched_by(campaign_ids=[a.pk, b.pk, unmatched.pk])
    assert set(matches) == {a.pk, b.pk}
    assert [(m.pool_slug, m.sponsor_name, m.amount) for m in matches[a.pk]] == [
        (pool.slug, pool.sponsor.public_name, 75_000)
    ]
    assert [m.amount for m in matches[b.pk]] == [25_000]


def test_a_campaign_nobody_matched_costs_its_page_one_query_on_allocations(django_assert_num_queries):
    campaign = LiveCampaignFactory()
    with django_assert_num_queries(1):
        assert campaigns_matched_by(campaign_ids=[campaign.pk]) == {}


def test_discover_cards_carry_the_matched_by_badge(client, paid_round):
    pool, _round, _a, _b = paid_round
    LiveCampaignFactory(title="Quiet bakery")
    page = client.get(reverse("projects:home")).content.decode()
    badges = re.findall(r'<p class="matched-by">(.*?)</p>', page)
    assert f"Matched by {pool.sponsor.public_name}: <strong>$750.00</strong>" in badges
    assert f"Matched by {pool.sponsor.public_name}: <strong>$250.00</strong>" in badges
    card = page[page.index("Quiet bakery") :]
    assert "matched-by" not in card[: card.index("</li>")]


def test_an_open_round_shows_its_live_estimate_and_no_match_yet(client):
    campaign = LiveCampaignFactory()
    pool = funded_pool(mode=PoolMode.PRO_RATA, campaigns=[campaign])
    open_round(pool)
    pledge_held(campaign=campaign)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert f"Matched by {pool.sponsor.public_name}" not in page  # nothing published yet
    # The only campaign of a pro-rata round already gets the whole pool: one more gift adds nothing.
    assert f'Matched by <a href="/matching/{pool.slug}/">{pool.name}</a>: your $10.00 would add no matching' in page


def test_finance_staff_pay_a_round_from_the_admin(client, paid_round):
    pool, _paid, _a, _b = paid_round
    client.force_login(StaffFactory())
    assert client.get(reverse("admin:matching_round_changelist")).status_code == 200
    assert client.get(reverse("admin:matching_pool_change", args=[pool.pk])).status_code == 200
    campaign = LiveCampaignFactory()
    other = funded_pool(campaigns=[campaign], per_campaign_cap=100_000)
    matching_round = open_round(other)
    for _ in range(2):
        pledge_held(campaign=campaign, amount=5_000)
    later = matching_round.ends_at + timedelta(seconds=1)
    ended = round_end(matching_round=matching_round, now=later)
    round_publish(matching_round=ended, now=timezone.now() - timedelta(days=4))  # its window is over
    response = client.post(
        reverse("admin:matching_round_changelist"), {"action": "pay", "_selected_action": [matching_round.pk]}
    )
    assert response.status_code == 302
    assert Round.objects.get(pk=matching_round.pk).status == RoundStatus.PAID


def test_the_pool_page_and_the_matched_by_line_in_chinese(client, paid_round):
    pool, _round, a, _b = paid_round
    client.cookies["django_language"] = "zh-hans"
    page = client.get(reverse("matching:pool_detail", args=[pool.slug]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "二次方配捐" in page.content.decode()
    campaign_page = client.get(a.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f"{pool.sponsor.public_name} 配捐" in campaign_page


# --- Live estimate ----------------------------------------------------------------------------


@pytest.fixture
def running_round():
    a = LiveCampaignFactory()
    b = LiveCampaignFactory()
    pool = funded_pool(amount=100_000, campaigns=[a, b], per_campaign_cap=100_000)
    open_round(pool)
    for _ in range(4):
        pledge_held(campaign=a, amount=2_500)
    for _ in range(2):
        pledge_held(campaign=b, amount=5_000)
    return pool, a, b


def test_the_estimate_is_a_range_that_allows_for_others_giving(client, running_round):
    pool, _a, b = running_round
    answer = client.get(reverse("matching:match_estimate", args=[b.slug]), {"amount": "10.00"}).json()
    (estimate,) = answer["estimates"]
    assert estimate["pool"] == pool.name
    # Now B gets 250.00 of 1,000.00 (weights 300.00 : 100.00). A third backer's 10.00 lifts B's
    # weight to (2 sqrt(5000) + sqrt(1000))^2 - 11000 = 18,944 cents, so B would get
    # 1000.00 x 18,944 / 48,944 = 387.05: the 10.00 adds 137.05 if the round ended now.
    assert estimate["high"] == 38_705 - 25_000
    assert 0 < estimate["low"] < estimate["high"]
    assert "can fall as others give" in answer["note"]
    assert estimate["text"].startswith(f"Matched by {pool.name}: your $10.00 adds about $")


def test_the_estimate_refuses_a_bad_amount_with_a_clear_message(client, running_round):
    _pool, a, _b = running_round
    response = client.get(reverse("matching:match_estimate", args=[a.slug]), {"amount": "-3"})
    assert response.status_code == 400
    assert response.json()["code"] == "amount_not_positive"


def test_a_campaign_outside_any_open_round_has_no_estimate(client):
    campaign = LiveCampaignFactory()
    answer = client.get(reverse("matching:match_estimate", args=[campaign.slug]), {"amount": "10"}).json()
    assert answer["estimates"] == []


def test_a_published_round_publishes_every_input_and_output_as_csv(client, paid_round):
    pool, matching_round, a, _b = paid_round
    results = client.get(reverse("matching:round_csv", args=[pool.slug, matching_round.pk, "results"]))
    lines = results.content.decode().splitlines()
    assert lines[0].startswith("campaign,title,contributions,backers,raised_minor,matched_minor")
    assert f"{a.pk},{a.title},4,4,10000,75000,USD" in lines
    inputs = client.get(reverse("matching:round_csv", args=[pool.slug, matching_round.pk, "inputs"]))
    rows = inputs.content.decode().splitlines()[1:]
    assert len(rows) == 6
    assert all(row.endswith(",yes,") for row in rows)
    # Backers are pseudonyms, not user ids or names.
    backer_column = {row.split(",")[2] for row in rows}
    assert len(backer_column) == 6
    assert all(len(b) == 16 for b in backer_column)


def test_an_open_rounds_csv_is_not_published(client):
    campaign = LiveCampaignFactory()
    pool = funded_pool(mode=PoolMode.PRO_RATA, campaigns=[campaign])
    matching_round = open_round(pool)
    assert client.get(reverse("matching:round_csv", args=[pool.slug, matching_round.pk, "results"])).status_code == 404


def test_the_sponsor_sees_their_pools_dashboard_and_no_one_else_does(client, paid_round):
    pool, _round, a, b = paid_round
    close_and_settle(a)
    close_and_settle(b)  # both miss their 1,000.00 goal: the 750.00 and 250.00 matched come back
    url = reverse("matching:pool_dashboard", args=[pool.slug])
    assert client.get(url).status_code == 302  # to the log-in page
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.force_login(pool.sponsor)
    page = client.get(url).content.decode()
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", page))
    assert figures["Put in"] == figures["Paid to campaigns"] == "$1,000.00"
    assert figures["Kept by campaigns that succeeded"] == "$0.00"
    assert figures["Come back from campaigns that failed"] == figures["Left"] == "$1,000.00"
    assert (figures["Contributions matched"], figures["Campaigns reached"]) == ("6", "2")
    assert "$750.00 came back" in page


def test_the_dashboard_charts_the_money_and_the_sponsor_chooses_where_the_rest_goes(client, paid_round):
    pool, _round, _a, _b = paid_round
    autumn = funded_pool(sponsor=pool.sponsor, name="Autumn fund", campaigns=[LiveCampaignFactory()])
    client.force_login(pool.sponsor)
    url = reverse("matching:pool_dashboard", args=[pool.slug])
    page = client.get(url).content.decode()
    # Put in 1,000.00, all paid to campaigns, nothing back or left yet: two full bars, three empty.
    bars = re.findall(r'<meter class="bar bar-(\w+)" min="0" max="100" value="(\d+)">', page)
    assert bars == [("deposited", "100"), ("paid", "100"), ("kept", "100"), ("returned", "0"), ("left", "0")]
    assert "Autumn fund" in page
    choose = reverse("matching:pool_leftover_choose", args=[pool.slug])
    response = client.post(choose, {"choice": "roll_over", "next_pool": autumn.slug}, follow=True)
    assert "will go where you chose" in response.content.decode()
    pool.refresh_from_db()
    assert (pool.leftover_choice, pool.next_pool_id) == ("roll_over", autumn.pk)
    # A wrong choice is explained and changes nothing.
    response = client.post(choose, {"choice": "roll_over", "next_pool": pool.slug}, follow=True)
    assert "cannot roll over into itself" in response.content.decode()
    pool.refresh_from_db()
    assert pool.next_pool_id == autumn.pk
    client.force_login(UserFactory())
    assert client.post(choose, {"choice": "refund"}).status_code == 404

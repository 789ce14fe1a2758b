"""Where the money is: the public page, its CSV and its API, read straight from the ledger."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import StaffFactory
from escrow.checkpoints import checkpoint_latest, ledger_seal
from escrow.ledger import Posting, ledger_accounts_get_or_create, ledger_post
from escrow.models import TransactionKind
from escrow.vocabulary import campaign_escrow_code, campaign_payable_code, release_account_specs
from matching.services import round_end, round_pay, round_publish
from matching.tests.factories import funded_pool, open_round
from pledges.models import Pledge
from pledges.tests.factories import pledge_held
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CampaignFactory, LiveCampaignFactory
from settlement.money import campaign_money
from settlement.services import campaigns_close_due, settlement_run

pytestmark = pytest.mark.django_db


def settle(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert campaigns_close_due(enqueue_settlement=False) == [campaign.pk]
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def succeeded():
    """A $500 goal reached by $300 + $250 pledges, released with a 5 % fee and paid out."""
    campaign = LiveCampaignFactory(goal=50_000, platform_fee_bps=500)
    pledge_held(campaign=campaign, amount=30_000)
    pledge_held(campaign=campaign, amount=25_000)
    return settle(campaign)


def money_page(client, campaign):
    return client.get(reverse("settlement:campaign_money", args=[campaign.slug]))


def test_a_succeeded_campaigns_money_is_released_less_the_fee_and_paid_out(client, succeeded):
    assert succeeded.status == CampaignStatus.SUCCEEDED
    money = campaign_money(campaign=succeeded)
    assert (money.raised, money.released, money.refunded, money.held) == (55_000, 55_000, 0, 0)
    assert (money.fees, money.paid_out, money.owed) == (2_750, 52_250, 0)
    assert [(r.about_pledges, r.amount, r.transactions) for r in money.releases] == [(True, 55_000, 2)]

    page = money_page(client, succeeded).content.decode()
    assert '<span class="stat-value" id="money-raised">$550.00</span>' in page
    assert '<span class="stat-value" id="money-released">$550.00</span>' in page
    assert '<span class="stat-value" id="money-held">$0.00</span>' in page
    assert "$27.50" in page  # the fee
    assert "$522.50" in page  # paid out
    assert "Backers’ pledges" in page
    assert "No checkpoint has been sealed yet." in page


def test_a_failed_campaigns_backers_are_shown_refunded_in_full(client):
    campaign = LiveCampaignFactory(goal=1_000_000)
    pledge_held(campaign=campaign, amount=4_000)
    settle(campaign)
    money = campaign_money(campaign=campaign)
    assert (money.raised, money.refunded, money.released, money.fees, money.held) == (4_000, 4_000, 0, 0, 0)
    assert '<span class="stat-value" id="money-refunded">$40.00</span>' in money_page(client, campaign).content.decode()


def test_a_live_campaigns_money_is_held_in_escrow(client, live_campaign):
    pledge_held(campaign=live_campaign, amount=12_345)
    money = campaign_money(campaign=live_campaign)
    assert (money.raised, money.held, money.released) == (12_345, 12_345, 0)
    page = money_page(client, live_campaign).content.decode()
    assert '<span class="stat-value" id="money-held">$123.45</span>' in page
    assert "Nothing has been released from escrow." in page


def test_each_tranche_is_listed_with_its_date_whatever_posts_it(client, live_campaign):
    """A later release (a milestone's tranche) is read by kind and reference, like any other."""
    pledge_held(campaign=live_campaign, amount=10_000)
    accounts = ledger_accounts_get_or_create(
        specs=release_account_specs(campaign_id=live_campaign.pk), currency=live_campaign.currency
    )
    for milestone, amount in ((1, 3_000), (2, 2_000)):
        ledger_post(
            posting=Posting(
                kind=TransactionKind.RELEASE,
                idempotency_key=f"test-tranche:{milestone}",
                reference=f"milestone:{milestone}",
                currency=live_campaign.currency,
                legs=[
                    (accounts[campaign_escrow_code(live_campaign.pk)], -amount),
                    (accounts[campaign_payable_code(live_campaign.pk)], amount),
                ],
            )
        )
    money = campaign_money(campaign=live_campaign)
    today = timezone.localdate()
    assert [(r.about, r.day, r.amount) for r in money.releases] == [
        ("milestone:1", today, 3_000),
        ("milestone:2", today, 2_000),
    ]
    assert (money.released, money.held, money.owed) == (5_000, 5_000, 5_000)
    page = money_page(client, live_campaign).content.decode()
    assert "<code>milestone:1</code>" in page
    assert "<code>milestone:2</code>" in page


def test_the_latest_checkpoint_and_how_much_of_the_campaign_it_seals_are_shown(client, succeeded):
    ledger_seal()
    latest = checkpoint_latest()
    later = LiveCampaignFactory()
    pledge_held(campaign=later, amount=1_000)
    pledge_held(campaign=later, amount=2_000)

    page = money_page(client, succeeded).content.decode()
    assert f'<code id="checkpoint-hash">{latest.hash}</code>' in page
    assert "6 of this campaign’s 6 ledger transactions are sealed." in page  # 2 holds, 2 releases, fee, payout
    assert campaign_money(campaign=later).unsealed_transactions == 2


def test_the_csv_lists_every_entry_on_the_campaigns_accounts_with_its_checkpoint(client, succeeded):
    ledger_seal()
    response = client.get(reverse("settlement:campaign_ledger_csv", args=[succeeded.slug]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    # Two holds (escrow leg), two releases (both legs), the fee and the payout (payable legs).
    assert [(r["kind"], r["account"], r["amount"]) for r in rows] == [
        ("hold", campaign_escrow_code(succeeded.pk), "300.00"),
        ("hold", campaign_escrow_code(succeeded.pk), "250.00"),
        ("release", campaign_escrow_code(succeeded.pk), "-300.00"),
        ("release", campaign_payable_code(succeeded.pk), "300.00"),
        ("release", campaign_escrow_code(succeeded.pk), "-250.00"),
        ("release", campaign_payable_code(succeeded.pk), "250.00"),
        ("fee", campaign_payable_code(succeeded.pk), "-27.50"),
        ("payout", campaign_payable_code(succeeded.pk), "-522.50"),
    ]
    assert {r["sealed_in_checkpoint"] for r in rows} == {"1"}
    assert not any("backer:" in value for r in rows for value in r.values())


def test_the_campaign_page_links_to_where_the_money_is(client, succeeded):
    page = client.get(succeeded.get_absolute_url()).content.decode()
    assert reverse("settlement:campaign_money", args=[succeeded.slug]) in page


def test_the_page_is_in_chinese_for_chinese_readers(client, succeeded):
    page = client.get(
        reverse("settlement:campaign_money", args=[succeeded.slug]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "资金去向" in page
    assert "已退还给支持者" in page


@pytest.mark.parametrize("status", [CampaignStatus.DRAFT, CampaignStatus.IN_REVIEW, CampaignStatus.SUSPENDED])
def test_a_campaign_nobody_may_see_has_no_money_page_csv_or_api(client, status, backer):
    campaign = CampaignFactory(
        status=status, launched_at=timezone.now() if status == CampaignStatus.SUSPENDED else None
    )
    client.force_login(backer)
    assert money_page(client, campaign).status_code == 404
    assert client.get(reverse("settlement:campaign_ledger_csv", args=[campaign.slug])).status_code == 404
    response = client.get(reverse("api:v1:campaign_money", args=[campaign.pk]))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_suspended_campaigns_backers_still_see_where_their_money_is(client):
    campaign = LiveCampaignFactory()
    pledge = pledge_held(campaign=campaign, amount=5_000)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SUSPENDED)
    client.force_login(Pledge.objects.get(pk=pledge.pk).backer)
    assert money_page(client, campaign).status_code == 200


def test_the_api_answers_the_same_figures_to_anyone(client, succeeded):
    ledger_seal()
    response = client.get(reverse("api:v1:campaign_money", args=[succeeded.pk]))
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in ("currency", "raised", "released", "refunded", "held", "fees", "paid_out")} == {
        "currency": "USD",
        "raised": 55_000,
        "released": 55_000,
        "refunded": 0,
        "held": 0,
        "fees": 2_750,
        "paid_out": 52_250,
    }
    assert [(r["about"], r["amount"], r["transactions"]) for r in data["releases"]] == [("", 55_000, 2)]
    assert data["checkpoint"]["hash"] == checkpoint_latest().hash
    assert (data["transactions"], data["sealed_transactions"]) == (6, 6)


def test_an_unknown_campaign_is_a_404_not_a_500(client):
    assert client.get("/campaigns/no-such-campaign/money/").status_code == 404
    assert client.get("/campaigns/no-such-campaign/money/ledger.csv").status_code == 404
    assert client.get("/api/v1/campaigns/999999/money/").status_code == 404
    assert client.post(reverse("settlement:campaign_money", args=["x"])).status_code == 405


def test_matched_money_is_shown_apart_from_what_backers_raised(client):
    campaign = LiveCampaignFactory(goal=10_000)
    pool = funded_pool(amount=100_000, campaigns=[campaign], per_campaign_cap=100_000)
    matching_round = open_round(pool)
    for _ in range(4):
        pledge_held(campaign=campaign, amount=2_500)
    round_end(matching_round=matching_round, now=matching_round.ends_at + timedelta(seconds=1))
    round_publish(matching_round=matching_round, now=timezone.now() - timedelta(days=4))
    round_pay(matching_round=matching_round, actor=StaffFactory())

    money = campaign_money(campaign=campaign)
    assert money.raised == 10_000
    assert money.matched > 0
    assert money.held == money.raised + money.matched
    page = money_page(client, campaign).content.decode()
    assert "matched by sponsors" in page

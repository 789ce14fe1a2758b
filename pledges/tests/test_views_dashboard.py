import csv
import io

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from pledges.dashboard import csv_safe
from pledges.models import PledgeStatus
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory
from settlement.verification import ledger_verify


def dashboard_url(campaign):
    return reverse("dashboard:campaign_dashboard", kwargs={"slug": campaign.slug})


@pytest.fixture
def campaign(db):
    campaign = LiveCampaignFactory(goal=100_000)
    reward = RewardTierFactory(campaign=campaign, title="Sticker", minimum_amount=1_000, quantity_limit=10)
    pledge_held(campaign=campaign, amount=2_500, reward=reward, backer=UserFactory(display_name="Ada"))
    pledge_held(campaign=campaign, amount=7_000)
    return campaign


@pytest.mark.django_db
def test_dashboard_shows_totals_chart_forecast_rewards_and_backers(client, campaign):
    client.force_login(campaign.initiator)
    page = client.get(dashboard_url(campaign)).content.decode()
    assert "$95.00" in page
    assert "<svg" in page
    assert 'class="chart-pledged"' in page
    assert 'class="chart-cone"' in page
    assert "Forecast at the deadline" in page
    assert "Sticker" in page
    assert "No reward" in page
    assert "Ada" in page
    assert "Download CSV" in page


@pytest.mark.django_db
def test_dashboard_is_only_for_the_initiator(client, campaign):
    assert client.get(dashboard_url(campaign)).status_code == 302  # log in first
    client.force_login(UserFactory())
    assert client.get(dashboard_url(campaign)).status_code == 404
    csv_url = reverse("dashboard:campaign_backers_csv", kwargs={"slug": campaign.slug})
    assert client.get(csv_url).status_code == 404
    cancel_url = reverse("dashboard:campaign_cancel", kwargs={"slug": campaign.slug})
    assert client.post(cancel_url).status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE


@pytest.mark.django_db
def test_dashboard_of_a_draft_has_no_chart_yet(client):
    draft = CampaignFactory()
    client.force_login(draft.initiator)
    page = client.get(dashboard_url(draft)).content.decode()
    assert "The chart starts when the campaign goes live." in page


@pytest.mark.django_db
def test_dashboard_and_csv_run_a_constant_number_of_queries(client, campaign, django_assert_max_num_queries):
    client.force_login(campaign.initiator)
    csv_url = reverse("dashboard:campaign_backers_csv", kwargs={"slug": campaign.slug})
    # session, user, campaign, rewards, forecast (pledges + prior), whether the deadline was extended
    # (pricing advice), per day, breakdown, count, page, the page's histories and its backers'
    # legacy extra pledges
    budget = 14
    with django_assert_max_num_queries(budget):
        assert client.get(dashboard_url(campaign)).status_code == 200
    with django_assert_max_num_queries(6):  # with the pledges' change histories, one query per chunk
        b"".join(client.get(csv_url).streaming_content)
    for _ in range(3):
        RewardTierFactory(campaign=campaign)
    for _ in range(12):
        pledge_held(campaign=campaign, amount=1_500)
    with django_assert_max_num_queries(budget):
        assert client.get(dashboard_url(campaign)).status_code == 200
    with django_assert_max_num_queries(6):
        body = b"".join(client.get(csv_url).streaming_content)
    assert len(body.decode().strip().splitlines()) == 1 + 14


@pytest.mark.django_db
def test_csv_lists_backers_and_defuses_formulas(client, campaign):
    pledge_held(campaign=campaign, amount=1_234, backer=UserFactory(display_name='=HYPERLINK("http://x")'))
    client.force_login(campaign.initiator)
    response = client.get(reverse("dashboard:campaign_backers_csv", kwargs={"slug": campaign.slug}))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["pledge", "backer", "email", "reward", "amount"]
    names = {row[1] for row in rows[1:]}
    assert "Ada" in names
    assert '\'=HYPERLINK("http://x")' in names
    assert {row[4] for row in rows[1:]} >= {"25.00", "70.00", "12.34"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("Ada", "Ada"), (None, ""), (5, "5")],
)
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


@pytest.mark.django_db
def test_cancel_asks_for_confirmation_then_refunds_everyone(
    client, campaign, celery_eager, django_capture_on_commit_callbacks
):
    client.force_login(campaign.initiator)
    cancel_url = reverse("dashboard:campaign_cancel", kwargs={"slug": campaign.slug})
    page = client.get(cancel_url).content.decode()
    assert "Yes, cancel and refund everyone" in page
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE  # GET changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(cancel_url, {"reason": "Supplier went bust"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert set(campaign.pledges.values_list("status", flat=True)) == {PledgeStatus.REFUNDED}
    assert ledger_verify() == []
    page = client.get(dashboard_url(campaign)).content.decode()
    assert "Cancel this campaign" not in page
    assert "can no longer be cancelled" in client.get(cancel_url).content.decode()


@pytest.mark.django_db
def test_backer_list_shows_a_backers_legacy_extra_pledges_in_their_one_row(client, campaign):
    from pledges.tests.factories import pledge_held_again

    grace = UserFactory(display_name="Grace")
    extra = pledge_held(campaign=campaign, amount=1_100, backer=grace)
    pledge_held(campaign=campaign, amount=3_000, backer=UserFactory(display_name="Linus"))
    managed = pledge_held_again(campaign=campaign, backer=grace, amount=4_200)
    extra.refresh_from_db()
    assert extra.legacy_duplicate
    assert not managed.legacy_duplicate

    client.force_login(campaign.initiator)
    page = client.get(dashboard_url(campaign)).content.decode()

    backer_list = page[page.index('id="backers-heading"') :]
    rows = backer_list.split("<tr>")[2:]  # the header row first
    assert [row.count("Grace") for row in rows] == [1, 0, 0, 0]  # one row, the newest
    assert "$42.00" in rows[0]
    assert "Also $11.00" in rows[0]
    assert "an earlier extra pledge" in rows[0]
    assert all("$11.00" not in row for row in rows[1:])

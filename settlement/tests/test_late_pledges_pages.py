"""Late pledges in the browser's pages: the initiator's settings, the campaign page, the form, the money page."""

from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from pledges.models import Pledge, PledgeStatus
from projects.models import LatePledgeOffer, LatePledgeReward
from settlement.late_release import late_releases_run

from .late_helpers import LATE_PRICE, campaign_settle, campaign_with_late_offer, late_pledge

pytestmark = pytest.mark.django_db


def _prices(campaign) -> dict:
    return dict(LatePledgeReward.objects.filter(offer__campaign=campaign).values_list("reward_id", "price"))


def test_the_initiator_edits_and_closes_late_pledges_on_the_dashboard(client):
    campaign, reward = campaign_with_late_offer()
    client.force_login(campaign.initiator)
    url = reverse("dashboard:late_pledges", args=[campaign.slug])
    page = client.get(url)
    assert page.status_code == 200
    assert "Late pledges" in page.content.decode()

    response = client.post(url, {f"offer_{reward.pk}": "on", f"price_{reward.pk}": "40.00"})
    assert response.status_code == 302
    assert _prices(campaign) == {reward.pk: 4_000}

    response = client.post(url, {f"offer_{reward.pk}": "on", f"price_{reward.pk}": "24.99"})
    assert response.status_code == 400
    assert "at least its campaign price" in response.content.decode()
    assert _prices(campaign) == {reward.pk: 4_000}

    client.post(url, {"action": "close"})
    assert not LatePledgeOffer.objects.get(campaign=campaign).is_open
    assert "cannot be opened again" in client.get(url).content.decode()


def test_someone_else_gets_a_404_for_the_settings(client):
    campaign, _reward = campaign_with_late_offer()
    client.force_login(UserFactory())
    assert client.get(reverse("dashboard:late_pledges", args=[campaign.slug])).status_code == 404


def test_a_backer_sees_late_pledges_open_and_pledges_late_through_the_form(client):
    campaign, reward = campaign_with_late_offer()
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Late pledges open" not in page  # not before success
    campaign = campaign_settle(campaign)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Late pledges open" in page
    assert "$30.00 or more" in page

    backer = UserFactory()
    client.force_login(backer)
    url = reverse("pledges:late_create", args=[campaign.slug])
    assert client.get(url, {"reward": reward.pk}).status_code == 200
    form = {
        "reward": reward.pk,
        "amount": "30.00",
        "card_number": "4242 4242 4242 4242",
        "expiry": "12/39",
        "cvc": "123",
        "idempotency_key": "web-late-1",
    }
    too_little = client.post(url, {**form, "amount": "29.99"})
    assert too_little.status_code == 400
    assert not Pledge.objects.filter(is_late=True).exists()

    response = client.post(url, form)
    again = client.post(url, form)  # sent twice: one pledge

    pledge = Pledge.objects.get(is_late=True)
    assert response.status_code == again.status_code == 302
    assert (pledge.backer, pledge.amount, pledge.status) == (backer, LATE_PRICE, PledgeStatus.HELD)
    thanks = client.get(response["Location"]).content.decode()
    assert "released to the initiator with the week" in thanks
    assert "held safely in escrow until" not in thanks


def test_the_money_page_shows_what_was_released_when_and_what_waits(client):
    campaign, reward = campaign_with_late_offer()
    campaign = campaign_settle(campaign)
    late_pledge(campaign=campaign, reward=reward)
    late_releases_run(now=campaign.deadline + timedelta(days=7, seconds=1))
    late_pledge(campaign=campaign, reward=reward, amount=5_000)

    page = client.get(reverse("settlement:campaign_money", args=[campaign.slug])).content.decode()

    assert "Waiting for the next weekly release: $50.00 from 1 late pledge." in page
    assert "$28.50" in page  # week 1: $30.00 less the 5 % fee, paid out
    client.force_login(campaign.initiator)
    assert "$28.50" in client.get(reverse("dashboard:late_pledges", args=[campaign.slug])).content.decode()


def test_late_pledges_read_in_chinese(client):
    campaign, reward = campaign_with_late_offer()
    campaign = campaign_settle(campaign)
    page = client.get(campaign.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "延迟支持开放中" in page
    assert "为此回报延迟支持" in page
    client.force_login(UserFactory())
    form = client.get(
        reverse("pledges:late_create", args=[campaign.slug]), {"reward": reward.pk}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "延迟支持" in form
    assert "您将立即被扣款" in form

"""The initiator's deliveries page and My pledges' rewards fragment, through the forms."""

import pytest
from django.utils import timezone

from fulfilment.models import Delivery, DeliveryStatus, Shipment
from pledges.models import Pledge

from .helpers import funded_campaign_with_rewards, succeed

pytestmark = pytest.mark.django_db


def test_initiator_ships_from_the_page_and_the_backer_confirms_in_my_pledges(client):
    campaign, (tier, _) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    pledge = Pledge.objects.get(campaign=campaign, reward=tier)
    url = f"/fulfilment/campaigns/{campaign.slug}/deliveries/"
    client.force_login(pledge.backer)
    assert client.get(url).status_code == 404  # not theirs
    client.force_login(campaign.initiator)
    assert "Mark shipped" in client.get(url).content.decode()
    future = client.post(f"{url}rewards/{tier.pk}/ship/", {"shipped_on": "2999-01-01"}, follow=True)
    assert "not in the future" in future.content.decode()
    assert not Shipment.objects.exists()
    today = timezone.localdate().isoformat()
    client.post(f"{url}rewards/{tier.pk}/ship/", {"shipped_on": today, "tracking_reference": "TRK9"})
    assert Shipment.objects.get(tier=tier).tracking_reference == "TRK9"
    client.force_login(pledge.backer)
    page = client.get("/pledges/").content.decode()
    assert "I received it" in page
    assert "TRK9" in page
    client.post(f"/fulfilment/pledges/{pledge.pk}/received/")
    assert Delivery.objects.get(pledge=pledge).status == DeliveryStatus.RECEIVED


def test_a_chinese_backer_reads_the_refusals_in_chinese(client, settings):
    campaign, (tier, _) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    pledge = Pledge.objects.get(campaign=campaign, reward=tier)
    client.force_login(pledge.backer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    # Not shipped yet: nothing to confirm; then a second "mark shipped" of the initiator.
    page = client.post(f"/fulfilment/pledges/{pledge.pk}/received/", follow=True).content.decode()
    assert "这个回报尚未发货。" in page
    assert "This reward has not been shipped yet." not in page
    client.force_login(campaign.initiator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    today = timezone.localdate().isoformat()
    url = f"/fulfilment/campaigns/{campaign.slug}/deliveries/rewards/{tier.pk}/ship/"
    client.post(url, {"shipped_on": today})
    again = client.post(url, {"shipped_on": today}, follow=True).content.decode()
    assert "这个回报已标记为已发货。" in again
    assert Shipment.objects.filter(tier=tier).count() == 1

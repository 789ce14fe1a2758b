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

"""The risk admin pages: staff can read every record, nobody can add, change or delete one."""

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import PaymentDeclined
from pledges.tests.factories import pledge_held
from projects.tests.factories import CategoryFactory, LiveCampaignFactory
from risk.models import FraudAlert
from risk.services import risk_assess_campaign, risk_check_pledge

pytestmark = pytest.mark.django_db

PAGES = ["riskmodelversion", "riskassessment", "pledgeriskcheck", "fraudalert"]


def test_staff_can_read_every_risk_record_but_not_change_it(client, staff, live_campaign):
    risk_assess_campaign(campaign=LiveCampaignFactory(category=CategoryFactory(name="Games")))
    tester = UserFactory()
    for _ in range(5):
        with pytest.raises(PaymentDeclined):
            pledge_held(campaign=live_campaign, backer=tester, token="tok_chargeDeclined")
    risk_check_pledge(pledge=pledge_held(campaign=live_campaign, backer=tester))
    alert = FraudAlert.objects.get()
    client.force_login(staff)

    for page in PAGES:
        assert client.get(reverse(f"admin:risk_{page}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:risk_{page}_add")).status_code == 403
    detail = client.get(reverse("admin:risk_fraudalert_change", args=[alert.pk]))
    assert detail.status_code == 200
    assert client.post(reverse("admin:risk_fraudalert_delete", args=[alert.pk]), {"post": "yes"}).status_code == 403
    assert FraudAlert.objects.filter(pk=alert.pk).exists()

"""Finance decides non-delivery reports in the console: a reason first, audited, once."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.roles import FINANCE, REVIEWERS
from accounts.tests.factories import UserFactory
from fulfilment.models import DeliveryReport
from fulfilment.services import delivery_report, tier_mark_shipped
from pledges.models import Pledge

from .helpers import funded_campaign_with_rewards, succeed

pytestmark = pytest.mark.django_db


def _report():
    campaign, (tier, _) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    pledge = Pledge.objects.get(campaign=campaign, reward=tier)
    tier_mark_shipped(tier_id=tier.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    return delivery_report(pledge_id=pledge.pk, actor=pledge.backer, message="Nothing came.")


def _staff(group: str):
    call_command("setup_staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_finance_upholds_a_report_with_a_reason_audited_and_a_second_decision_is_refused(client):
    report = _report()
    user = _staff(FINANCE)
    client.force_login(user)
    changelist = reverse("admin:fulfilment_deliveryreport_changelist")
    assert "Nothing came." in client.get(changelist).content.decode()
    asked = client.post(changelist, {"action": "uphold", "_selected_action": [report.pk]})
    assert asked.status_code == 200  # the reason form; nothing decided yet
    assert DeliveryReport.objects.get(pk=report.pk).decision == ""
    data = {"action": "uphold", "_selected_action": [report.pk], "apply": "1", "reason": "Carrier lost it"}
    client.post(changelist, data)
    report.refresh_from_db()
    assert (report.decision, report.decision_reason, report.decided_by) == ("upheld", "Carrier lost it", user)
    assert AuditEvent.objects.filter(action="delivery_report_decide", actor=user, outcome="done").count() == 1
    client.post(changelist, {**data, "action": "dismiss"})
    report.refresh_from_db()
    assert report.decision == "upheld"
    assert AuditEvent.objects.filter(action="delivery_report_decide", outcome="refused").count() == 1


def test_reviewers_cannot_decide_reports(client):
    report = _report()
    client.force_login(_staff(REVIEWERS))
    response = client.post(
        reverse("admin:fulfilment_deliveryreport_changelist"),
        {"action": "uphold", "_selected_action": [report.pk], "apply": "1", "reason": "x"},
    )
    assert response.status_code in (302, 403)
    assert DeliveryReport.objects.get(pk=report.pk).decision == ""

"""A decision on a fraud alert is audited by the risk service, whoever calls it."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.tests.factories import ReviewerFactory
from crowdfund_site.exceptions import Conflict
from pledges.tests.factories import pledge_held
from risk.models import FraudAlert, FraudAlertStatus, PledgeRiskCheck
from risk.services import risk_fraud_alert_confirm, risk_fraud_alert_dismiss

pytestmark = pytest.mark.django_db


def _open_alert(campaign) -> FraudAlert:
    pledge = pledge_held(campaign=campaign)
    check = PledgeRiskCheck.objects.create(pledge=pledge, probability=0.95, signals={})
    return FraudAlert.objects.create(
        risk_check=check, campaign=campaign, backer=pledge.backer, probability=0.95, reasons=["Card testing."]
    )


def _row(alert) -> tuple:
    events = list(AuditEvent.objects.filter(object_type="risk.FraudAlert", object_id=str(alert.pk)))
    assert len(events) == 1, events
    event = events[0]
    return (event.action, event.actor, event.outcome, event.reason, event.details)


@pytest.mark.parametrize(
    ("service", "admin_action", "to_status"),
    [
        (risk_fraud_alert_dismiss, "dismiss", FraudAlertStatus.DISMISSED),
        (risk_fraud_alert_confirm, "confirm", FraudAlertStatus.CONFIRMED),
    ],
    ids=["dismiss", "confirm"],
)
def test_the_service_and_the_admin_leave_the_same_audit_row(client, live_campaign, service, admin_action, to_status):
    reviewer = ReviewerFactory()
    by_service, in_admin = _open_alert(live_campaign), _open_alert(live_campaign)

    service(alert=by_service, actor=reviewer, reason="Checked with the bank.")
    client.force_login(reviewer)
    client.post(
        reverse("admin:risk_fraudalert_changelist"),
        {"action": admin_action, "_selected_action": [in_admin.pk], "apply": "1", "reason": "Checked with the bank."},
    )

    action = f"fraud_alert_{admin_action}"
    expected = (action, reviewer, "done", "Checked with the bank.", {"from": "open", "to": to_status})
    assert _row(by_service) == _row(in_admin) == expected


def test_a_decided_alert_is_refused_and_its_first_decision_stays_the_only_row(live_campaign):
    reviewer = ReviewerFactory()
    alert = _open_alert(live_campaign)
    risk_fraud_alert_confirm(alert=alert, actor=reviewer, reason="Stolen card.")

    with pytest.raises(Conflict):
        risk_fraud_alert_dismiss(alert=alert, actor=reviewer, reason="Changed my mind.")

    assert _row(alert)[0] == "fraud_alert_confirm"

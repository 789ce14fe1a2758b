"""A staff refund leaves the same audit row whether finance staff used the admin or the API."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory
from crowdfund_site.api.testing import api_client
from pledges.models import PledgeStatus
from pledges.tests.factories import pledge_held

pytestmark = pytest.mark.django_db


def _row(pledge) -> tuple:
    """Return what the audit log says about ``pledge``: its one row, less the pledge's own id."""
    events = list(AuditEvent.objects.filter(object_type="pledges.Pledge", object_id=str(pledge.pk)))
    assert len(events) == 1, events
    event = events[0]
    return (event.action, event.actor, event.outcome, event.reason, event.details)


def test_a_refund_in_the_admin_and_in_the_api_leaves_the_same_audit_row(client, live_campaign):
    finance = FinanceFactory()
    in_admin = pledge_held(campaign=live_campaign, amount=4_200)
    in_api = pledge_held(campaign=live_campaign, amount=4_200)
    reason = "Backer reported fraud on the card."

    client.force_login(finance)
    client.post(
        reverse("admin:pledges_pledge_changelist"),
        {"action": "refund", "_selected_action": [str(in_admin.pk)], "apply": "1", "reason": reason},
    )
    response = api_client(finance).post(
        f"/api/v1/pledges/{in_api.pk}/refund/", {"reason": reason}, format="json", HTTP_IDEMPOTENCY_KEY="refund-1"
    )

    assert response.status_code == 200, response.content
    in_admin.refresh_from_db()
    assert in_admin.status == PledgeStatus.REFUNDED
    details = {"from": PledgeStatus.HELD, "to": PledgeStatus.REFUNDED, "amount": 4_200, "currency": "USD"}
    assert _row(in_admin) == _row(in_api) == ("pledge_refund", finance, "done", reason, details)

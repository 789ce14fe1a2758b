"""Every staff decision and money action of settlement leaves its audit row, whatever the interface.

The services write the row; the admin, the API and the initiator's dashboard only call them, so
the same decision leaves the same row through each of them.
"""

import json

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory
from crowdfund_site.api.testing import api_client
from pledges.models import PledgeStatus
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due

pytestmark = pytest.mark.django_db


def audit_rows(action: str, obj) -> list[tuple]:
    """Return the audit rows of ``action`` on ``obj`` as a user of the log reads them (one per event)."""
    rows = AuditEvent.objects.filter(action=action, object_id=str(obj.pk)).values_list(
        "actor__username", "action", "object_type", "reason", "outcome", "details"
    )
    return sorted((*row[:-1], json.dumps(row[-1], sort_keys=True)) for row in rows)


def test_a_staff_cancel_leaves_the_same_audit_row_through_the_admin_and_the_api(client):
    finance = FinanceFactory()
    in_admin, in_api = LiveCampaignFactory(), LiveCampaignFactory()
    for campaign in (in_admin, in_api):
        pledge_held(campaign=campaign, amount=2_500)

    client.force_login(finance)
    client.post(
        reverse("admin:projects_campaign_changelist"),
        {"action": "cancel", "_selected_action": [in_admin.pk], "apply": "1", "reason": "Confirmed fraud."},
    )
    response = api_client(finance).post(
        f"/api/v1/campaigns/{in_api.pk}/cancel/",
        {"reason": "Confirmed fraud."},
        format="json",
        HTTP_IDEMPOTENCY_KEY="cancel-1",
    )

    assert response.status_code == 200, response.content
    for campaign in (in_admin, in_api):
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.CANCELLED
    expected = [(finance.username, "campaign_cancel", "projects.Campaign", "Confirmed fraud.", "done", "{}")]
    assert audit_rows("campaign_cancel", in_api) == expected
    assert audit_rows("campaign_cancel", in_admin) == expected


def test_an_initiator_cancelling_from_the_dashboard_leaves_an_audit_row(client):
    campaign = LiveCampaignFactory()
    pledge_held(campaign=campaign, amount=2_500)
    client.force_login(campaign.initiator)

    client.post(reverse("dashboard:campaign_cancel", args=[campaign.slug]), {"reason": "Supplier went bust."})

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert audit_rows("campaign_cancel", campaign) == [
        (campaign.initiator.username, "campaign_cancel", "projects.Campaign", "Supplier went bust.", "done", "{}")
    ]


def test_retrying_a_settlement_and_a_refund_from_the_admin_is_recorded_by_the_services(client):
    finance = FinanceFactory()
    client.force_login(finance)
    campaign = LiveCampaignFactory()
    pledge_held(campaign=campaign, amount=2_500)
    campaign.__class__.objects.filter(pk=campaign.pk).update(deadline=campaign.launched_at)
    campaigns_close_due(enqueue_settlement=False)  # as if the worker died before settling
    client.post(
        reverse("admin:settlement_stucksettlement_changelist"),
        {"action": "retry", "_selected_action": [campaign.pk]},
    )
    # The ledger records a refund the gateway never confirmed (the process died in between).
    from pledges.services import _pledge_return_to_backer

    other = pledge_held(campaign=LiveCampaignFactory(), amount=1_000)
    _pledge_return_to_backer(pledge=other, to_status=PledgeStatus.CANCELLED, actor=None, reason="test")
    client.post(
        reverse("admin:settlement_unconfirmedrefund_changelist"),
        {"action": "retry", "_selected_action": [other.pk]},
    )

    assert audit_rows("settlement_retry", campaign) == [
        (finance.username, "settlement_retry", "projects.Campaign", "", "done", "{}")
    ]
    assert audit_rows("refund_retry", other) == [(finance.username, "refund_retry", "pledges.Pledge", "", "done", "{}")]

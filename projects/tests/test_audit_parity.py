"""A staff decision on a campaign leaves the same audit row whether it was taken in the admin or the API."""

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import ReviewerFactory
from crowdfund_site.api.testing import api_client
from projects.models import CampaignStatus
from projects.services import campaign_reinstate, campaign_suspend
from projects.tests.factories import CampaignFactory, LiveCampaignFactory

pytestmark = pytest.mark.django_db

# (admin decision, API path, audit action, status after)
DECISIONS = [
    ("approve", "approve", "campaign_approve", CampaignStatus.APPROVED),
    ("request_changes", "request-changes", "campaign_request_changes", CampaignStatus.CHANGES_REQUESTED),
    ("reject", "reject", "campaign_reject", CampaignStatus.REJECTED),
]


def _in_review():
    return CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=timezone.now(), launch_on_approval=False)


def _row(campaign) -> tuple:
    """Return what the audit log says about ``campaign``: its one row, less the campaign's own id."""
    events = list(AuditEvent.objects.filter(object_type="projects.Campaign", object_id=str(campaign.pk)))
    assert len(events) == 1, events
    event = events[0]
    return (event.action, event.actor, event.outcome, event.reason, event.details)


@pytest.mark.parametrize(("decision", "api_path", "action", "to_status"), DECISIONS, ids=[d[0] for d in DECISIONS])
def test_a_review_decision_in_the_admin_and_in_the_api_leaves_the_same_audit_row(
    client, decision, api_path, action, to_status
):
    reviewer = ReviewerFactory()
    in_admin, in_api = _in_review(), _in_review()
    reason = "The budget needs a breakdown."

    client.force_login(reviewer)
    client.post(reverse("admin:projects_campaign_decide", args=[in_admin.pk]), {"decision": decision, "reason": reason})
    body = {"note": reason} if decision == "approve" else {"reason": reason}
    response = api_client(reviewer).post(f"/api/v1/campaigns/{in_api.pk}/{api_path}/", body, format="json")

    assert response.status_code == 200, response.content
    expected = (action, reviewer, "done", reason, {"from": CampaignStatus.IN_REVIEW, "to": to_status})
    assert _row(in_admin) == _row(in_api) == expected


def test_an_approval_from_the_admin_list_leaves_the_row_the_api_leaves(client):
    reviewer = ReviewerFactory()
    in_admin, in_api = _in_review(), _in_review()

    client.force_login(reviewer)
    client.post(
        reverse("admin:projects_campaignreviewqueue_changelist"),
        {"action": "approve", "_selected_action": [str(in_admin.pk)]},
    )
    api_client(reviewer).post(f"/api/v1/campaigns/{in_api.pk}/approve/", {}, format="json")

    assert _row(in_admin) == _row(in_api)
    assert _row(in_api)[:3] == ("campaign_approve", reviewer, "done")


def test_suspending_and_reinstating_are_audited_by_the_services_whoever_calls_them():
    moderator = ReviewerFactory()
    campaign = LiveCampaignFactory()

    campaign_suspend(campaign=campaign, actor=moderator, reason="Reported as a copy.")
    campaign_reinstate(campaign=campaign, actor=moderator, reason="Report unfounded.")

    rows = AuditEvent.objects.filter(object_type="projects.Campaign", object_id=str(campaign.pk)).order_by("id")
    assert [(e.action, e.actor, e.reason, e.details) for e in rows] == [
        ("campaign_suspend", moderator, "Reported as a copy.", {"from": "live", "to": "suspended"}),
        ("campaign_reinstate", moderator, "Report unfounded.", {"from": "suspended", "to": "live"}),
    ]


def test_a_refused_decision_leaves_no_done_row_and_the_admin_records_the_refusal(client):
    reviewer = ReviewerFactory()
    campaign = LiveCampaignFactory()

    client.force_login(reviewer)
    client.post(reverse("admin:projects_campaign_decide", args=[campaign.pk]), {"decision": "approve"})
    refused_in_api = api_client(reviewer).post(f"/api/v1/campaigns/{campaign.pk}/approve/", {}, format="json")

    assert refused_in_api.status_code == 409
    assert list(AuditEvent.objects.values_list("action", "outcome")) == [("campaign_approve", "refused")]

"""The risk admin pages: read-only records, risk in the review queue, and decisions on fraud alerts."""

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory, ReviewerFactory, UserFactory
from crowdfund_site.exceptions import PaymentDeclined
from pledges.tests.factories import pledge_held
from projects.admin import CampaignReviewQueueAdmin
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, CategoryFactory, LiveCampaignFactory
from risk.models import FraudAlert, FraudAlertStatus
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


def _alert() -> FraudAlert:
    """Return an open fraud alert raised by a card-testing pattern."""
    campaign = LiveCampaignFactory()
    tester = UserFactory()
    for _ in range(5):
        with pytest.raises(PaymentDeclined):
            pledge_held(campaign=campaign, backer=tester, token="tok_chargeDeclined")
    risk_check_pledge(pledge=pledge_held(campaign=campaign, backer=tester))
    return FraudAlert.objects.get()


def _decide(client, action: str, alert: FraudAlert, reason: str = "Checked with the bank."):
    return client.post(
        reverse("admin:risk_fraudalert_changelist"),
        {"action": action, "_selected_action": [alert.pk], "apply": "1", "reason": reason},
        follow=True,
    )


def test_the_review_queue_shows_each_campaigns_risk_and_top_reasons(client):
    reviewer = ReviewerFactory()
    scored = CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=timezone.now(), goal=10_000_000)
    unscored = CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=timezone.now(), title="Not scored")
    assessment = risk_assess_campaign(campaign=scored)
    client.force_login(reviewer)

    page = client.get(reverse("admin:projects_campaignreviewqueue_changelist")).content.decode()

    assert "Risk of failure" in page
    assert f"{assessment.probability:.0%}" in page
    assert escape(assessment.reasons[0]) in page
    assert "not scored yet" in page
    # The admin sorts by a column's number (from 1) in list_display.
    risk_column = CampaignReviewQueueAdmin.list_display.index("risk") + 1
    riskiest_first = client.get(reverse("admin:projects_campaignreviewqueue_changelist"), {"o": f"-{risk_column}"})
    assert [c.pk for c in riskiest_first.context["cl"].result_list] == [scored.pk, unscored.pk]


def test_the_review_page_shows_the_latest_assessment_and_its_reasons(client):
    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=timezone.now())
    assessment = risk_assess_campaign(campaign=campaign)
    client.force_login(ReviewerFactory())

    page = client.get(reverse("admin:projects_campaignreviewqueue_change", args=[campaign.pk])).content.decode()

    assert "Risk assessment" in page
    assert f"{round(assessment.probability * 100)}% estimated risk of failure" in page
    for reason in assessment.reasons:
        assert escape(reason) in page


def test_the_review_page_says_when_a_campaign_is_not_scored_yet(client):
    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=timezone.now())
    client.force_login(ReviewerFactory())

    page = client.get(reverse("admin:projects_campaignreviewqueue_change", args=[campaign.pk])).content.decode()

    assert "Not scored yet" in page


def test_a_reviewer_sees_open_alerts_with_their_reasons_and_dismisses_one(client):
    alert = _alert()
    reviewer = ReviewerFactory()
    client.force_login(reviewer)

    page = client.get(reverse("admin:risk_fraudalert_changelist") + "?status__exact=open").content.decode()
    assert escape(alert.reasons[0]) in page

    response = _decide(client, "dismiss", alert)

    assert "Dismiss fraud alerts: done for 1 of 1." in response.content.decode()
    alert.refresh_from_db()
    assert alert.status == FraudAlertStatus.DISMISSED
    event = AuditEvent.objects.get(action="fraud_alert_dismiss")
    assert (event.actor, event.object_id, event.reason, event.outcome) == (
        reviewer,
        str(alert.pk),
        "Checked with the bank.",
        "done",
    )


def test_confirming_needs_a_reason_and_a_decided_alert_is_refused(client, staff):
    alert = _alert()
    client.force_login(staff)

    asked = _decide(client, "confirm", alert, reason="")
    assert "reason" in asked.content.decode().lower()
    alert.refresh_from_db()
    assert alert.status == FraudAlertStatus.OPEN

    _decide(client, "confirm", alert)
    alert.refresh_from_db()
    assert alert.status == FraudAlertStatus.CONFIRMED

    again = _decide(client, "dismiss", alert)
    assert "already decided" in again.content.decode()
    alert.refresh_from_db()
    assert alert.status == FraudAlertStatus.CONFIRMED
    assert AuditEvent.objects.filter(action="fraud_alert_dismiss", outcome="refused").count() == 1


def test_finance_staff_cannot_decide_on_fraud_alerts(client):
    alert = _alert()
    client.force_login(FinanceFactory())

    assert client.get(reverse("admin:risk_fraudalert_changelist")).status_code == 403
    assert _decide(client, "dismiss", alert).status_code == 403
    alert.refresh_from_db()
    assert alert.status == FraudAlertStatus.OPEN

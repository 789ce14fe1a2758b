"""The operators' console for campaigns, through the admin URLs with the test client."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory, ReviewerFactory, StaffFactory
from pledges.models import PledgeStatus
from pledges.services import pledge_create
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CampaignFactory, LiveCampaignFactory

QUEUE = "admin:projects_campaignreviewqueue_changelist"


def in_review(**fields):
    fields.setdefault("submitted_at", timezone.now())
    return CampaignFactory(status=CampaignStatus.IN_REVIEW, **fields)


def decide(client, campaign, decision, reason=""):
    return client.post(
        reverse("admin:projects_campaign_decide", args=[campaign.pk]),
        {"decision": decision, "reason": reason},
        follow=True,
    )


@pytest.fixture
def reviewer(db, client):
    user = ReviewerFactory()
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_review_queue_lists_campaigns_in_review_oldest_submission_first(client, reviewer):
    now = timezone.now()
    newer = in_review(title="Newer idea", submitted_at=now - timedelta(hours=1))
    older = in_review(title="Older idea", submitted_at=now - timedelta(days=2))
    CampaignFactory(title="Still a draft")
    LiveCampaignFactory(title="Already live")

    page = client.get(reverse(QUEUE)).content.decode()

    assert page.index(older.title) < page.index(newer.title)
    assert "Still a draft" not in page
    assert "Already live" not in page
    assert "$1,000.00" in page  # the goal, in the campaign's currency


@pytest.mark.django_db
def test_review_page_shows_story_rewards_initiator_history_and_decision_buttons(client, reviewer):
    campaign = in_review(description="Our <b>story</b> in full.")
    campaign.rewards.create(title="Signed copy", minimum_amount=2_500)
    CampaignFactory(initiator=campaign.initiator, title="Earlier attempt", status=CampaignStatus.FAILED)

    page = client.get(reverse("admin:projects_campaignreviewqueue_change", args=[campaign.pk])).content.decode()

    assert "Our &lt;b&gt;story&lt;/b&gt; in full." in page
    assert "Signed copy" in page
    assert "Earlier attempt" in page
    assert 'value="approve"' in page
    assert 'value="reject"' in page


@pytest.mark.django_db
def test_reviewer_approves_and_the_campaign_goes_live_with_the_decision_recorded(client, reviewer):
    campaign = in_review(launch_on_approval=True)

    response = decide(client, campaign, "approve")

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE
    assert campaign.deadline > timezone.now() + timedelta(days=29)
    assert "Approved" in response.content.decode()
    change = campaign.status_changes.get(to_status=CampaignStatus.APPROVED)
    assert change.actor == reviewer
    assert AuditEvent.objects.filter(actor=reviewer, action="campaign_approve", object_id=str(campaign.pk)).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("decision", ["request_changes", "reject"])
def test_request_changes_and_reject_need_a_reason_the_initiator_will_see(client, reviewer, decision):
    campaign = in_review()

    refused = decide(client, campaign, decision, reason="  ")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.IN_REVIEW
    assert "Give the initiator a reason." in refused.content.decode()

    decide(client, campaign, decision, reason="The goal needs a budget breakdown.")
    campaign.refresh_from_db()
    expected = CampaignStatus.CHANGES_REQUESTED if decision == "request_changes" else CampaignStatus.REJECTED
    assert campaign.status == expected
    assert campaign.review_feedback == "The goal needs a budget breakdown."
    assert campaign.reviewed_by == reviewer


@pytest.mark.django_db
def test_approving_twice_or_a_campaign_that_moved_on_is_refused_clearly(client, reviewer):
    campaign = in_review(launch_on_approval=False)
    decide(client, campaign, "approve")

    again = decide(client, campaign, "approve")

    assert "This campaign is approved and cannot be reviewed." in again.content.decode()
    assert campaign.status_changes.filter(to_status=CampaignStatus.APPROVED).count() == 1
    assert AuditEvent.objects.filter(action="campaign_approve", outcome="refused").count() == 1


@pytest.mark.django_db
def test_finance_staff_cannot_make_review_decisions(client):
    client.force_login(FinanceFactory())
    campaign = in_review()

    assert client.get(reverse(QUEUE)).status_code == 403
    decide(client, campaign, "approve")

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.IN_REVIEW


@pytest.mark.django_db
def test_nobody_edits_a_campaign_directly_in_admin(client):
    client.force_login(StaffFactory())
    campaign = CampaignFactory()
    url = reverse("admin:projects_campaign_change", args=[campaign.pk])

    client.post(url, {"title": "Renamed behind the initiator's back", "goal": 1})

    campaign.refresh_from_db()
    assert campaign.title != "Renamed behind the initiator's back"
    assert client.get(reverse("admin:projects_campaign_add")).status_code == 403


@pytest.mark.django_db
def test_campaign_list_searches_and_filters(client):
    client.force_login(StaffFactory())
    LiveCampaignFactory(title="Pocket roguelike")
    CampaignFactory(title="Weather station")

    found = client.get(reverse("admin:projects_campaign_changelist"), {"q": "roguelike"}).content.decode()
    live_only = client.get(reverse("admin:projects_campaign_changelist"), {"status__exact": "live"}).content.decode()

    assert "Pocket roguelike" in found
    assert "Weather station" not in found
    assert "Pocket roguelike" in live_only
    assert "Weather station" not in live_only


def admin_action(client, url, action, ids, **extra):
    return client.post(url, {"action": action, "_selected_action": [str(i) for i in ids], **extra}, follow=True)


@pytest.mark.django_db
def test_suspend_needs_a_reason_and_stops_pledges(client, reviewer, backer):
    campaign = LiveCampaignFactory()
    url = reverse("admin:projects_campaign_changelist")

    form = admin_action(client, url, "suspend", [campaign.pk])
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE
    assert "Reason" in form.content.decode()

    admin_action(client, url, "suspend", [campaign.pk], apply="1", reason="Reported as a copy of another product.")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUSPENDED
    assert AuditEvent.objects.get(action="campaign_suspend").reason == "Reported as a copy of another product."


@pytest.mark.django_db
def test_cancel_from_admin_refunds_every_backer(
    client, backer, live_campaign, celery_eager, django_capture_on_commit_callbacks
):
    client.force_login(FinanceFactory())
    pledge = pledge_create(
        backer=backer,
        campaign=live_campaign,
        amount=5_000,
        currency="USD",
        payment_token="tok_visa",
        idempotency_key="admin-cancel",
    )

    with django_capture_on_commit_callbacks(execute=True):
        admin_action(
            client,
            reverse("admin:projects_campaign_changelist"),
            "cancel",
            [live_campaign.pk],
            apply="1",
            reason="Initiator could not be verified.",
        )

    live_campaign.refresh_from_db()
    pledge.refresh_from_db()
    assert live_campaign.status == CampaignStatus.CANCELLED
    assert pledge.status == PledgeStatus.REFUNDED
    assert Campaign.objects.get(pk=live_campaign.pk).settled_at is not None

"""The "Suspended past deadline" operations list: campaigns whose backers' money waits for staff."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory, ReviewerFactory, StaffFactory, UserFactory
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_held
from projects.models import Campaign, CampaignStatus, CampaignStatusChange, Category
from projects.services import campaign_suspend
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db

URL_NAME = "admin:settlement_suspendedpastdeadline_changelist"


def admin_action(client, action, ids, **extra):
    return client.post(
        reverse(URL_NAME), {"action": action, "_selected_action": [str(i) for i in ids], **extra}, follow=True
    )


def suspended_past_deadline(*, title: str, goal: int = 100_000, amounts=(4_200,)) -> Campaign:
    """Return a campaign that took pledges, was suspended by a moderator, then passed its deadline."""
    campaign = LiveCampaignFactory(title=title, goal=goal)
    for amount in amounts:
        pledge_held(campaign=campaign, amount=amount)
    campaign_suspend(campaign=campaign, actor=ReviewerFactory(), reason=f"Reports of fraud on {title}.")
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(days=1))
    campaign.refresh_from_db()
    return campaign


def test_lists_only_suspended_campaigns_past_their_deadline(client):
    waiting = suspended_past_deadline(title="Waiting for staff")
    still_running = LiveCampaignFactory(title="Suspended, deadline ahead")
    campaign_suspend(campaign=still_running, actor=ReviewerFactory(), reason="Checking.")
    LiveCampaignFactory(title="Live past deadline", deadline=timezone.now() - timedelta(minutes=1))
    client.force_login(FinanceFactory())

    page = client.get(reverse(URL_NAME)).content.decode()

    assert "Waiting for staff" in page
    assert "Reports of fraud on Waiting for staff." in page
    assert "Suspended, deadline ahead" not in page
    assert "Live past deadline" not in page
    assert waiting.initiator.username in page or str(waiting.initiator) in page


def test_finance_and_reviewers_see_it_each_with_their_own_decision(client):
    campaign = suspended_past_deadline(title="Held money")

    client.force_login(ReviewerFactory())
    page = client.get(reverse(URL_NAME)).content.decode()
    # Reviewers suspend campaigns and may reinstate them; refunding everyone is finance's call.
    assert 'value="reinstate"' in page
    assert 'value="cancel"' not in page
    client.force_login(UserFactory())
    assert client.get(reverse(URL_NAME)).status_code == 302  # to the admin login
    client.force_login(FinanceFactory())
    page = client.get(reverse(URL_NAME)).content.decode()
    # Finance may cancel; reinstating stays a moderator's decision.
    assert 'value="cancel"' in page
    assert 'value="reinstate"' not in page
    detail = client.get(reverse("admin:settlement_suspendedpastdeadline_change", args=[campaign.pk]))
    assert "Reports of fraud on Held money." in detail.content.decode()  # in the status history


def test_reinstated_campaign_is_closed_and_settled_by_the_next_close_run(
    client, celery_eager, django_capture_on_commit_callbacks
):
    campaign = suspended_past_deadline(title="Cleared", goal=1_000, amounts=(4_200, 1_800))
    client.force_login(StaffFactory())

    admin_action(client, "reinstate", [campaign.pk], apply="1", reason="Investigation found nothing wrong.")

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE
    event = AuditEvent.objects.get(action="campaign_reinstate")
    assert (event.object_type, event.object_id, event.outcome) == ("projects.Campaign", str(campaign.pk), "done")
    assert "Cleared" not in client.get(reverse(URL_NAME)).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_close_due() == [campaign.pk]

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    assert campaign.settled_at is not None
    assert set(Pledge.objects.filter(campaign=campaign).values_list("status", flat=True)) == {PledgeStatus.RELEASED}
    assert ledger_verify() == []


def test_finance_cancels_and_every_backer_is_refunded(client, celery_eager, django_capture_on_commit_callbacks):
    campaign = suspended_past_deadline(title="Fraudulent", amounts=(4_200, 1_800))
    client.force_login(FinanceFactory())

    asked = admin_action(client, "cancel", [campaign.pk])
    assert "Cancel campaigns" in asked.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        admin_action(client, "cancel", [campaign.pk], apply="1", reason="Confirmed fraud.")

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert campaign.settled_at is not None
    assert set(Pledge.objects.filter(campaign=campaign).values_list("status", flat=True)) == {PledgeStatus.REFUNDED}
    assert set(AuditEvent.objects.filter(action="campaign_cancel").values_list("object_type", flat=True)) == {
        "projects.Campaign"
    }
    assert "Fraudulent" not in client.get(reverse(URL_NAME)).content.decode()
    assert ledger_verify() == []


def add_rows(n: int, start: int) -> None:
    """Add ``n`` suspended campaigns past their deadline, each with its suspension, in bulk."""
    category = Category.objects.create(name=f"Cat {start}", slug=f"cat-{start}")
    initiators = [UserFactory() for _ in range(2)]
    moderator = ReviewerFactory()
    past = timezone.now() - timedelta(days=1)
    campaigns = Campaign.objects.bulk_create(
        Campaign(
            initiator=initiators[i % 2],
            title=f"Suspended {start + i}",
            slug=f"suspended-{start + i}",
            summary="s",
            category=category,
            goal=100_000,
            status=CampaignStatus.SUSPENDED,
            deadline=past,
            pledged_amount=500 * i,
            backer_count=i,
        )
        for i in range(n)
    )
    CampaignStatusChange.objects.bulk_create(
        CampaignStatusChange(
            campaign=c, from_status=CampaignStatus.LIVE, to_status=CampaignStatus.SUSPENDED, actor=moderator, reason="r"
        )
        for c in campaigns
    )


def queries_for(client) -> int:
    url = reverse(URL_NAME)
    assert client.get(url).status_code == 200  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_list_uses_a_constant_number_of_queries(client):
    client.force_login(FinanceFactory())
    add_rows(2, start=0)
    small = queries_for(client)

    add_rows(18, start=100)
    large = queries_for(client)

    assert large == small

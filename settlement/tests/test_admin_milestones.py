"""Finance in the console: milestones awaiting sign-off; signing off releases, rejecting asks a reason."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import ReviewerFactory, UserFactory
from pledges.tests.factories import pledge_held
from projects.milestones.models import MilestoneStatus
from projects.milestones.services import (
    milestone_submit_proof,
    milestone_vote,
    milestone_votes_close_due,
    milestones_plan_set,
)
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory
from settlement.tests.milestone_helpers import campaign_with_milestones, finance_user, plan, succeed

pytestmark = pytest.mark.django_db


def approved_milestone():
    campaign = campaign_with_milestones([3_000, 7_000])
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer, amount=10_000)
    second = succeed(campaign).milestones.get(position=2)
    milestone_submit_proof(milestone=second, actor=campaign.initiator, proof_text="Prototype photos")
    milestone_vote(milestone=second, backer=backer, approve=True)
    milestone_votes_close_due(now=timezone.now() + timedelta(days=8))
    second.refresh_from_db()
    assert second.status == MilestoneStatus.APPROVED
    return second


def finance_client(client):
    user = finance_user("sign_off_milestone", "declare_milestone_failure", "view_milestone")
    client.force_login(user)
    return client, user


def test_finance_sees_the_proof_and_turnout_and_signing_off_releases_the_tranche(client):
    milestone = approved_milestone()
    client, user = finance_client(client)
    changelist = reverse("admin:projects_milestone_changelist")
    page = client.get(changelist, {"finance": "waiting"})
    assert page.status_code == 200
    assert "100.0 % of pledged" in page.content.decode()
    detail = client.get(reverse("admin:projects_milestone_change", args=[milestone.pk])).content.decode()
    assert "Prototype photos" in detail
    response = client.post(changelist, {"action": "sign_off_and_release", "_selected_action": [milestone.pk]})
    assert response.status_code == 302
    milestone.refresh_from_db()
    assert milestone.status == MilestoneStatus.RELEASED
    assert AuditEvent.objects.filter(action="milestone_sign_off", actor=user).exists()


def test_rejecting_asks_for_a_reason_first(client):
    milestone = approved_milestone()
    client, _ = finance_client(client)
    changelist = reverse("admin:projects_milestone_changelist")
    asked = client.post(changelist, {"action": "reject", "_selected_action": [milestone.pk]})
    assert asked.status_code == 200  # the reason form
    milestone.refresh_from_db()
    assert milestone.status == MilestoneStatus.APPROVED
    client.post(changelist, {"action": "reject", "_selected_action": [milestone.pk], "apply": "1", "reason": "Blurry"})
    milestone.refresh_from_db()
    assert (milestone.status, milestone.decision_reason) == (MilestoneStatus.REJECTED, "Blurry")


def test_reviewers_see_the_milestone_plan_at_review(client):
    call_command("setup_staff_groups", verbosity=0)
    campaign = CampaignFactory(description="A story.")
    milestones_plan_set(campaign=campaign, actor=campaign.initiator, plan=plan([2_000, 8_000]))
    type(campaign).objects.filter(pk=campaign.pk).update(status=CampaignStatus.IN_REVIEW)
    client.force_login(ReviewerFactory())
    page = client.get(reverse("admin:projects_campaignreviewqueue_change", args=[campaign.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Photos of step 2" in body
    assert "80 %" in body

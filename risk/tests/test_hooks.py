"""Campaigns are scored when submitted and pledges checked when made, on commit, through Celery tasks.

A new pledge sends one message, its follow-up (``pledges.tasks.pledge_held_follow_up``): the
receipt and the fraud checks together. A change of a pledge likewise sends one
(``pledges.tasks.pledge_changed_follow_up``): the change's e-mail and the fraud checks.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client
from pledges import tasks as pledge_tasks
from pledges.models import Pledge
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import CampaignFactory
from risk import tasks
from risk.models import PledgeRiskCheck, RiskAssessment
from risk.services import risk_assess_unscored_in_review

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Record the risk tasks sent to the broker instead of sending them."""
    calls = []
    every = (
        tasks.assess_campaign,
        tasks.check_pledge,
        pledge_tasks.pledge_held_follow_up,
        pledge_tasks.pledge_changed_follow_up,
        pledge_tasks.send_pledge_changed,
    )
    for task in every:
        monkeypatch.setattr(task, "delay", lambda *args, _name=task.name: calls.append((_name, args)))
    return calls


def test_submitting_on_the_page_asks_for_a_risk_assessment(client, sent, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("projects:campaign_review", kwargs={"slug": campaign.slug}))

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.IN_REVIEW
    assert sent == [("risk.tasks.assess_campaign", (campaign.pk,))]


def test_submitting_through_the_api_asks_for_a_risk_assessment(sent, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(campaign.initiator).post(f"/api/v1/campaigns/{campaign.pk}/submit/")

    assert response.status_code == 200
    assert sent == [("risk.tasks.assess_campaign", (campaign.pk,))]


def test_a_refused_submission_asks_for_nothing(client, sent, django_capture_on_commit_callbacks):
    campaign = CampaignFactory(description="")
    client.force_login(campaign.initiator)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("projects:campaign_review", kwargs={"slug": campaign.slug}))

    assert sent == []


def test_a_pledge_made_on_the_page_is_checked_with_the_client_address(
    client, sent, live_campaign, django_capture_on_commit_callbacks
):
    backer = UserFactory()
    client.force_login(backer)
    page = client.get(reverse("pledges:create", kwargs={"slug": live_campaign.slug}))
    key = page.context["idempotency_key"]

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("pledges:create", kwargs={"slug": live_campaign.slug}),
            {
                "reward": "",
                "amount": "25.00",
                "card_number": "4242 4242 4242 4242",
                "expiry": "12/39",
                "cvc": "123",
                "idempotency_key": key,
            },
            REMOTE_ADDR="203.0.113.7",
        )

    pledge = Pledge.objects.get(backer=backer)
    assert sent == [("pledges.tasks.pledge_held_follow_up", (pledge.pk, "203.0.113.7"))]


def test_a_pledge_made_through_the_api_is_checked(sent, live_campaign, django_capture_on_commit_callbacks):
    backer = UserFactory()
    body = {"amount": 2_500, "currency": "USD", "reward": None, "payment_token": "tok_visa"}

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(backer).post(
            f"/api/v1/campaigns/{live_campaign.pk}/pledges/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )

    assert response.status_code == 201
    assert sent == [("pledges.tasks.pledge_held_follow_up", (response.json()["id"], "127.0.0.1"))]


def test_a_pledge_s_one_message_sends_its_receipt_and_checks_it_with_the_client_address(
    live_campaign, celery_eager, django_capture_on_commit_callbacks, mailoutbox
):
    backer = UserFactory(email="ada@example.com")
    body = {"amount": 2_500, "currency": "USD", "reward": None, "payment_token": "tok_visa"}

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(backer).post(
            f"/api/v1/campaigns/{live_campaign.pk}/pledges/",
            body,
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-1",
            REMOTE_ADDR="198.51.100.9",
        )

    assert response.status_code == 201
    pledge = Pledge.objects.get(pk=response.json()["id"])
    assert pledge.risk_check.ip == "198.51.100.9"
    assert [message.to for message in mailoutbox] == [["ada@example.com"]]
    # Run again (a retry, a duplicate delivery): neither job is done twice.
    pledge_tasks.pledge_held_follow_up.apply(args=[pledge.pk, "198.51.100.9"])
    assert len(mailoutbox) == 1
    assert PledgeRiskCheck.objects.filter(pledge=pledge).count() == 1


def test_a_pledge_changed_through_the_api_sends_one_message(sent, live_campaign, django_capture_on_commit_callbacks):
    from pledges.models import PledgeChange
    from pledges.tests.factories import pledge_held

    backer = UserFactory()
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=5_000)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(backer).post(
            f"/api/v1/pledges/{pledge.pk}/change/",
            {"amount": 3_000},
            format="json",
            HTTP_IDEMPOTENCY_KEY="change-1",
            REMOTE_ADDR="198.51.100.9",
        )

    assert (response.status_code, response.json()["amount"]) == (200, 3_000), response.content
    change = PledgeChange.objects.get(pledge=pledge)
    assert sent == [("pledges.tasks.pledge_changed_follow_up", (change.pk, pledge.pk, "198.51.100.9"))]


def test_a_reward_changed_on_the_page_sends_one_message(
    client, sent, live_campaign, django_capture_on_commit_callbacks
):
    from pledges.models import PledgeChange
    from pledges.tests.factories import pledge_held
    from projects.tests.factories import RewardTierFactory

    backer = UserFactory()
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=5_000)
    poster = RewardTierFactory(campaign=live_campaign, minimum_amount=1_000)
    client.force_login(backer)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("pledges:change_reward", kwargs={"pk": pledge.pk}), {"reward": poster.pk}, REMOTE_ADDR="203.0.113.7"
        )

    change = PledgeChange.objects.get(pledge=pledge)
    assert change.to_reward_id == poster.pk
    assert sent == [("pledges.tasks.pledge_changed_follow_up", (change.pk, pledge.pk, "203.0.113.7"))]


def test_a_change_s_one_message_sends_its_email_and_checks_the_pledge_with_the_client_address(
    live_campaign, celery_eager, django_capture_on_commit_callbacks, mailoutbox
):
    from pledges.changes import pledge_change
    from pledges.models import PledgeChange
    from pledges.tests.factories import pledge_held

    backer = UserFactory(email="ada@example.com")
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=5_000)  # its own message not run
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        pledge_change(
            pledge=pledge,
            actor=backer,
            amount=7_000,
            payment_token="tok_visa",
            idempotency_key="c-1",
            client_ip="198.51.100.9",
        )

    pledge.refresh_from_db()
    assert pledge.amount == 7_000
    assert pledge.risk_check.ip == "198.51.100.9"
    assert [message.to for message in mailoutbox] == [["ada@example.com"]]
    assert "$50.00 → $70.00" in mailoutbox[0].body
    # Run again (a retry, a duplicate delivery): neither job is done twice.
    change = PledgeChange.objects.get(pledge=pledge)
    pledge_tasks.pledge_changed_follow_up.apply(args=[change.pk, pledge.pk, "198.51.100.9"])
    assert len(mailoutbox) == 1
    assert PledgeRiskCheck.objects.filter(pledge=pledge).count() == 1


def test_a_failing_receipt_does_not_keep_the_pledge_from_being_checked(live_campaign, monkeypatch):
    from pledges import followups
    from pledges.tests.factories import pledge_held

    pledge = pledge_held(campaign=live_campaign)

    def mail_server_down(**kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(followups, "pledge_receipt_send", mail_server_down)
    with pytest.raises(ConnectionRefusedError):  # an OSError: the task is retried
        followups.pledge_follow_ups_run(pledge_id=pledge.pk, ip="203.0.113.7")
    pledge.refresh_from_db()
    assert pledge.risk_check.ip == "203.0.113.7"


def test_the_tasks_store_an_assessment_and_a_check(live_campaign):
    from pledges.tests.factories import pledge_held

    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=timezone.now())
    assert 0 <= tasks.assess_campaign(campaign.pk) <= 1
    assert RiskAssessment.objects.filter(campaign=campaign).count() == 1
    pledge = pledge_held(campaign=live_campaign)
    assert 0 <= tasks.check_pledge(pledge.pk, "198.51.100.4") <= 1
    assert pledge.risk_check.ip == "198.51.100.4"


def test_a_broker_outage_does_not_fail_the_request(monkeypatch, django_capture_on_commit_callbacks):
    def down(*args):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.assess_campaign, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.enqueue_campaign_assessment(1)


def test_an_address_that_is_not_an_ip_is_dropped():
    assert tasks.client_ip_valid("2001:db8::1") == "2001:db8::1"
    assert tasks.client_ip_valid("unknown") is None
    assert tasks.client_ip_valid(None) is None


def test_the_sweep_scores_campaigns_in_review_not_scored_since_their_submission():
    now = timezone.now()
    unscored = CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=now - timedelta(hours=1))
    resubmitted = CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=now - timedelta(hours=1))
    scored = CampaignFactory(status=CampaignStatus.IN_REVIEW, submitted_at=now - timedelta(hours=1))
    CampaignFactory()  # a draft is not scored
    tasks.assess_campaign(resubmitted.pk)
    tasks.assess_campaign(scored.pk)
    # Changes were requested and the campaign came back after its assessment.
    Campaign.objects.filter(pk=resubmitted.pk).update(submitted_at=timezone.now())

    assert risk_assess_unscored_in_review() == 2
    assert RiskAssessment.objects.filter(campaign=unscored).count() == 1
    assert risk_assess_unscored_in_review() == 0
    assert RiskAssessment.objects.filter(campaign=scored).count() == 1
    assert RiskAssessment.objects.filter(campaign=resubmitted).count() == 2

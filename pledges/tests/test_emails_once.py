"""E-mail tasks run twice (a retry, a redelivery after a worker died) send each e-mail once."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from accounts.models import SentEmail
from accounts.tests.factories import UserFactory
from pledges import tasks as pledge_tasks
from pledges.notifications import campaign_outcome_emails_send
from pledges.services import pledge_cancel
from pledges.tests.factories import pledge_held, pledge_held_again
from projects import tasks as project_tasks
from projects.models import Campaign, CampaignStatus
from projects.services import campaign_request_changes, campaign_submit_for_review, campaign_update_create
from projects.tests.factories import CampaignFactory, LiveCampaignFactory
from settlement.services import campaigns_close_due, settlement_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox():
    mail.outbox.clear()
    return mail.outbox


def recipients(outbox) -> list[str]:
    return sorted(address for message in outbox for address in message.to)


def test_a_receipt_task_run_twice_sends_one_receipt(live_campaign, outbox):
    backer = UserFactory(email="ada@example.com")
    pledge = pledge_held(campaign=live_campaign, backer=backer)
    outbox.clear()
    pledge_tasks.send_pledge_receipt.apply(args=[pledge.pk])
    pledge_tasks.send_pledge_receipt.apply(args=[pledge.pk])
    assert recipients(outbox) == ["ada@example.com"]
    assert SentEmail.objects.filter(kind="pledge_receipt", object_id=pledge.pk, recipient=backer).count() == 1


def test_a_refund_task_run_twice_sends_one_notice(live_campaign, outbox):
    backer = UserFactory(email="bo@example.com")
    pledge = pledge_held(campaign=live_campaign, backer=backer)
    pledge_cancel(pledge=pledge, actor=backer)
    outbox.clear()
    for _ in range(2):
        pledge_tasks.send_pledge_refunded.apply(args=[pledge.pk])
    assert recipients(outbox) == ["bo@example.com"]


def test_outcome_emails_run_twice_reach_everyone_once(outbox):
    campaign = LiveCampaignFactory(goal=1_000)
    ada, bob = UserFactory(email="ada@example.com"), UserFactory(email="bob@example.com")
    pledge_held(campaign=campaign, backer=ada, amount=2_000)
    pledge_held_again(campaign=campaign, backer=ada, amount=500)
    pledge_held(campaign=campaign, backer=bob, amount=700)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    outbox.clear()

    for _ in range(2):
        pledge_tasks.send_campaign_outcome_emails.apply(args=[campaign.pk])

    assert recipients(outbox) == sorted(["ada@example.com", "bob@example.com", campaign.initiator.email])


def test_an_update_run_twice_reaches_each_backer_once_and_the_next_update_is_sent(live_campaign, outbox):
    backers = [UserFactory(email=f"b{i}@example.com") for i in range(3)]
    for backer in backers:
        pledge_held(campaign=live_campaign, backer=backer)
    first = campaign_update_create(campaign=live_campaign, actor=live_campaign.initiator, title="News", body="Hi")
    second = campaign_update_create(campaign=live_campaign, actor=live_campaign.initiator, title="More", body="Hi")
    outbox.clear()

    for _ in range(2):
        project_tasks.send_campaign_update_email.apply(args=[first.pk])
    project_tasks.send_campaign_update_email.apply(args=[second.pk])

    assert recipients(outbox) == sorted([b.email for b in backers] * 2)


def test_each_review_round_is_sent_once(staff, outbox):
    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW)
    campaign_request_changes(campaign=campaign, reviewer=staff, reason="Add a photo")
    for _ in range(2):
        project_tasks.send_campaign_review_email.apply(args=[campaign.pk, CampaignStatus.CHANGES_REQUESTED])
    campaign_submit_for_review(campaign=campaign, actor=campaign.initiator)
    campaign_request_changes(campaign=campaign, reviewer=staff, reason="And a video")
    for _ in range(2):
        project_tasks.send_campaign_review_email.apply(args=[campaign.pk, CampaignStatus.CHANGES_REQUESTED])
    assert recipients(outbox) == [campaign.initiator.email] * 2


def test_a_mail_server_failure_leaves_the_unsent_for_the_retry(monkeypatch, outbox):
    campaign = LiveCampaignFactory(goal=1_000_000)
    backers = [UserFactory(email=f"c{i}@example.com") for i in range(4)]
    for backer in backers:
        pledge_held(campaign=campaign, backer=backer, amount=1_000)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    outbox.clear()
    send = EmailBackend.send_messages

    def fail_on_the_third(self, messages):
        if len(mail.outbox) == 2:
            raise ConnectionRefusedError("mail server down")
        return send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", fail_on_the_third)
    with pytest.raises(OSError, match="mail server down"):
        campaign_outcome_emails_send(campaign_id=campaign.pk)
    assert len(outbox) == 2
    monkeypatch.undo()

    campaign_outcome_emails_send(campaign_id=campaign.pk)  # what Celery's autoretry does

    assert recipients(outbox) == sorted([campaign.initiator.email, *(b.email for b in backers)])

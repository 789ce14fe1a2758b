"""Keeping backers informed: the initiator is reminded at 21 days without news, the backers told at 28."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.tests.factories import pledge_held
from projects.models import (
    Campaign,
    CampaignStatus,
    CampaignStatusChange,
    CampaignUpdate,
    SilenceReminder,
    SilenceReminderStatus,
)
from projects.reminders import silence_reminders_create_due, silence_reminders_send_due
from projects.tasks import send_silence_reminders
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due, settlement_run

pytestmark = pytest.mark.django_db


def succeeded_campaign(*, backers: int = 2) -> Campaign:
    campaign = LiveCampaignFactory(goal=1_000)
    for _ in range(backers):
        pledge_held(campaign=campaign, amount=5_000)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    mail.outbox.clear()  # the outcome e-mails
    return campaign


def succeeded_days_ago(campaign: Campaign, days: float) -> None:
    """Move the campaign's success back in time, as if the days had passed."""
    CampaignStatusChange.objects.filter(campaign=campaign, to_status=CampaignStatus.SUCCEEDED).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def post_update(campaign: Campaign, *, days_ago: float) -> CampaignUpdate:
    return CampaignUpdate.objects.create(
        campaign=campaign,
        author=campaign.initiator,
        title="Progress",
        body="Moulds are done.",
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def remind(campaign: Campaign | None = None, *, days: float = 0) -> int:
    """Run what beat runs, ``days`` after the campaign's success (the clock moved forward)."""
    if campaign is None:
        return send_silence_reminders()
    success = CampaignStatusChange.objects.get(campaign=campaign, to_status=CampaignStatus.SUCCEEDED).created_at
    now = success + timedelta(days=days)
    silence_reminders_create_due(now=now)
    return silence_reminders_send_due(now=now)


def sent_to() -> list[tuple[str, str]]:
    return sorted((message.to[0], message.subject) for message in mail.outbox)


def test_nothing_is_sent_before_21_days_without_news():
    campaign = succeeded_campaign()
    assert remind(campaign, days=20.9) == 0
    assert mail.outbox == []
    assert not SilenceReminder.objects.exists()


def test_the_initiator_is_reminded_once_at_21_days_and_the_backers_once_at_28():
    campaign = succeeded_campaign(backers=2)
    assert remind(campaign, days=21) == 1
    assert sent_to() == [(campaign.initiator.email, f"Your backers have not heard from {campaign.title} for a while")]
    assert reverse("projects:campaign_update_new", args=[campaign.slug]) in mail.outbox[0].body
    assert remind(campaign, days=21.1) == 0  # beat runs it again: nothing twice
    assert remind(campaign, days=27.9) == 0

    mail.outbox.clear()
    assert remind(campaign, days=28) == 2
    backers = sorted(p.backer.email for p in campaign.pledges.select_related("backer"))
    assert [to for to, _ in sent_to()] == backers
    assert all(subject == f"No news from {campaign.title} for four weeks" for _, subject in sent_to())
    assert reverse("settlement:campaign_money", args=[campaign.slug]) in mail.outbox[0].body
    assert remind(campaign, days=90) == 0
    assert send_silence_reminders() == 0  # the task, with the real clock
    assert SilenceReminder.objects.filter(status=SilenceReminderStatus.SENT).count() == 2


def test_an_update_restarts_the_count_and_a_new_silence_is_reminded_again():
    campaign = succeeded_campaign(backers=1)
    update = post_update(campaign, days_ago=-15)  # posted 15 days after success
    assert remind(campaign, days=35) == 0  # 20 days since the update
    assert remind(campaign, days=36.1) == 1
    assert [to for to, _ in sent_to()] == [campaign.initiator.email]

    mail.outbox.clear()
    CampaignUpdate.objects.filter(pk=update.pk).update(created_at=update.created_at + timedelta(days=30))
    assert remind(campaign, days=50) == 0  # news on day 45: a new silence, 5 days old
    assert remind(campaign, days=66.1) == 1  # 21 days of it
    assert [to for to, _ in sent_to()] == [campaign.initiator.email]
    assert SilenceReminder.objects.filter(kind="initiator", status=SilenceReminderStatus.SENT).count() == 2


def test_a_reminder_that_fell_due_is_skipped_when_news_comes_before_it_is_sent():
    campaign = succeeded_campaign()
    later = timezone.now() + timedelta(days=22)
    assert silence_reminders_create_due(now=later) == 1
    post_update(campaign, days_ago=-21.5)
    assert silence_reminders_send_due(now=later) == 0
    assert mail.outbox == []
    assert SilenceReminder.objects.get().status == SilenceReminderStatus.SKIPPED


@pytest.mark.parametrize("status", [CampaignStatus.LIVE, CampaignStatus.FAILED, CampaignStatus.CANCELLED])
def test_only_succeeded_campaigns_are_reminded(status):
    campaign = succeeded_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    assert remind(campaign, days=40) == 0
    assert mail.outbox == []


def test_the_reminder_is_in_the_initiators_language():
    campaign = succeeded_campaign(backers=1)
    campaign.initiator.preferred_language = "zh-hans"
    campaign.initiator.save(update_fields=["preferred_language"])
    assert remind(campaign, days=22) == 1
    assert mail.outbox[0].subject == f"您的支持者已经有一段时间没有收到“{campaign.title}”的消息了"


def test_staff_see_campaigns_silent_for_60_days(admin_client):
    quiet = succeeded_campaign(backers=1)
    succeeded_days_ago(quiet, 61)
    recent = succeeded_campaign(backers=1)
    succeeded_days_ago(recent, 61)
    post_update(recent, days_ago=30)
    remind()

    page = admin_client.get(reverse("admin:projects_silentcampaign_changelist"))
    assert page.status_code == 200
    content = page.content.decode()
    assert quiet.title in content
    assert recent.title not in content
    assert reverse("settlement:campaign_money", args=[quiet.slug]) in content


def test_the_silent_list_is_for_staff_only(client):
    client.force_login(UserFactory())
    response = client.get(reverse("admin:projects_silentcampaign_changelist"))
    assert response.status_code == 302  # to the admin's log-in

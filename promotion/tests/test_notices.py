"""Follow, "Remind me" and "Notify me on launch": each e-mail once, at its time, to the right people."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, NotAllowed
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.services import campaign_launch
from projects.tests.factories import CampaignFactory, LiveCampaignFactory
from promotion.models import Notice, NoticeKind, NoticeOutcome
from promotion.notifications import notices_send_due
from promotion.selectors import launch_notice_count
from promotion.services import (
    follow_create,
    launch_notice_request,
    notice_cancel,
    notices_arm,
    reminder_request,
)
from promotion.tasks import send_due_notices

pytestmark = pytest.mark.django_db


def _run_beat_task_times(n: int) -> None:
    for _ in range(n):
        send_due_notices()


def test_remind_me_sends_one_email_48_hours_before_the_end():
    campaign = LiveCampaignFactory(deadline=timezone.now() + timedelta(days=5))
    backer = UserFactory(email="ann@example.com")
    notice = reminder_request(user=backer, campaign=campaign)
    assert notice.due_at == campaign.deadline - timedelta(hours=48)
    _run_beat_task_times(2)
    assert mail.outbox == []  # not yet due
    notices_send_due(now=campaign.deadline - timedelta(hours=47))
    _run_beat_task_times(3)
    notices_send_due(now=campaign.deadline - timedelta(hours=40))
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ann@example.com"]
    assert "48 hours" in mail.outbox[0].subject
    assert campaign.title in mail.outbox[0].subject
    notice.refresh_from_db()
    assert notice.outcome == NoticeOutcome.SENT


def test_remind_me_is_skipped_for_someone_who_backed_the_campaign_meanwhile():
    campaign = LiveCampaignFactory(deadline=timezone.now() + timedelta(days=1))
    backer = UserFactory()
    reminder_request(user=backer, campaign=campaign)
    pledge_held(campaign=campaign, backer=backer)
    _run_beat_task_times(2)
    assert not [m for m in mail.outbox if "48 hours" in m.subject]
    assert Notice.objects.get().outcome == NoticeOutcome.SKIPPED


def test_asking_twice_still_sends_one_reminder_and_cancelling_sends_none():
    campaign = LiveCampaignFactory(deadline=timezone.now() + timedelta(days=1))
    ann, bob = UserFactory(), UserFactory()
    reminder_request(user=ann, campaign=campaign)
    reminder_request(user=ann, campaign=campaign)
    reminder_request(user=bob, campaign=campaign)
    notice_cancel(user=bob, campaign=campaign, kind=NoticeKind.ENDING)
    _run_beat_task_times(3)
    assert [m.to for m in mail.outbox] == [[ann.email]]


def test_remind_me_is_refused_for_a_campaign_not_taking_pledges_or_ones_own():
    campaign = LiveCampaignFactory()
    with pytest.raises(NotAllowed):
        reminder_request(user=campaign.initiator, campaign=campaign)
    with pytest.raises(Conflict):
        reminder_request(user=UserFactory(), campaign=CampaignFactory())
    assert not Notice.objects.exists()


def _approved(**fields):
    return CampaignFactory(status=CampaignStatus.APPROVED, **fields)


def test_notify_me_on_launch_sends_one_email_once_the_campaign_launches():
    campaign = _approved()
    fans = [UserFactory() for _ in range(3)]
    for fan in fans:
        launch_notice_request(user=fan, campaign=campaign)
    _run_beat_task_times(2)
    assert mail.outbox == []  # not launched yet
    campaign_launch(campaign=campaign, actor=campaign.initiator)
    _run_beat_task_times(3)
    launch_mails = [m for m in mail.outbox if "is live" in m.subject]
    assert sorted(m.to[0] for m in launch_mails) == sorted(f.email for f in fans)


def test_the_notify_count_is_shown_from_ten(client):
    campaign = _approved()
    for _ in range(9):
        launch_notice_request(user=UserFactory(), campaign=campaign)
    assert launch_notice_count(campaign=campaign) is None
    assert "will be notified on launch" not in client.get(campaign.get_absolute_url()).content.decode()
    launch_notice_request(user=UserFactory(), campaign=campaign)
    assert launch_notice_count(campaign=campaign) == 10
    assert "10 people will be notified on launch" in client.get(campaign.get_absolute_url()).content.decode()


def test_notify_is_only_for_a_campaign_waiting_to_launch():
    with pytest.raises(Conflict):
        launch_notice_request(user=UserFactory(), campaign=LiveCampaignFactory())


def test_followers_get_one_email_when_the_creator_launches_and_not_for_earlier_launches():
    creator = UserFactory()
    earlier = LiveCampaignFactory(initiator=creator, launched_at=timezone.now() - timedelta(hours=2))
    follower = UserFactory()
    follow_create(follower=follower, creator=creator)
    also_notified = UserFactory()
    follow_create(follower=also_notified, creator=creator)
    campaign = _approved(initiator=creator)
    launch_notice_request(user=also_notified, campaign=campaign)
    _run_beat_task_times(2)
    assert mail.outbox == []  # the earlier launch came before they followed
    campaign_launch(campaign=campaign, actor=creator)
    _run_beat_task_times(3)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([follower.email, also_notified.email])
    assert not Notice.objects.filter(campaign=earlier).exists()


def test_a_launch_email_is_skipped_if_the_campaign_is_no_longer_live():
    campaign = _approved()
    launch_notice_request(user=UserFactory(), campaign=campaign)
    campaign_launch(campaign=campaign, actor=campaign.initiator)
    type(campaign).objects.filter(pk=campaign.pk).update(status=CampaignStatus.CANCELLED)
    notices_arm()
    notices_send_due()
    assert mail.outbox == []
    assert Notice.objects.get().outcome == NoticeOutcome.SKIPPED


def test_following_oneself_is_refused():
    user = UserFactory()
    with pytest.raises(Exception, match="yourself"):
        follow_create(follower=user, creator=user)


def test_the_buttons_follow_and_remind_through_the_page(client):
    campaign = LiveCampaignFactory()
    backer = UserFactory()
    client.force_login(backer)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Remind me" in page
    assert f"Follow {campaign.initiator.public_name}" in page
    client.post(f"/campaigns/{campaign.slug}/notify/ending/")
    client.post(f"/campaigns/{campaign.slug}/follow/")
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Reminder set" in page
    assert f"Following {campaign.initiator.public_name}" in page
    assert Notice.objects.filter(user=backer, kind=NoticeKind.ENDING).count() == 1
    client.post(f"/campaigns/{campaign.slug}/notify/ending/", {"stop": "1"})
    assert not Notice.objects.exists()
    assert client.post(f"/campaigns/{campaign.slug}/notify/bogus/").status_code == 404


def test_visitors_are_asked_to_log_in_and_the_buttons_refuse_them(client):
    campaign = LiveCampaignFactory()
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Log in to be reminded or to follow the creator" in page
    response = client.post(f"/campaigns/{campaign.slug}/notify/ending/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert not Notice.objects.exists()


def test_the_buttons_and_share_links_speak_chinese(client):
    campaign = LiveCampaignFactory()
    client.force_login(UserFactory())
    page = client.get(campaign.get_absolute_url() + "?hl=zh-hans").content.decode()
    assert "提醒我" in page
    assert f"关注 {campaign.initiator.public_name}" in page
    assert "分享这个项目" in page

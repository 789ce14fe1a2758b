"""Launch, follow and "Remind me" e-mails with real beat and worker processes on PostgreSQL and Redis.

Two workers take beat's ``send_due_notices`` at once and one is killed while sending: every
notice ends done and every person gets each e-mail once (the e-mails are files, as a mail server
would have them), except that the one message in flight at the kill may go twice if the kill
falls between the mail server taking it and the COMMIT (the window promotion.notifications names).
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import UserFactory
from projects.models import CampaignStatus
from projects.services import campaign_launch
from projects.tests.factories import CampaignFactory, LiveCampaignFactory
from promotion.models import Notice, NoticeKind, NoticeOutcome
from promotion.services import follow_create, launch_notice_request, reminder_request
from settlement.tests.test_worker import _wait_for, celery_processes  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"),
        reason="needs DATABASE_URL on PostgreSQL and CELERY_BROKER_URL on Redis",
    ),
]


def _recipients(folder) -> Counter:
    sent = Counter()
    for path in folder.iterdir():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("To: "):
                sent[line[4:].strip()] += 1
    return sent


def test_two_workers_and_a_killed_one_send_each_notice_exactly_once(celery_processes, tmp_path):  # noqa: F811
    ending = LiveCampaignFactory(deadline=timezone.now() + timedelta(hours=30))
    reminded = [UserFactory() for _ in range(40)]
    for user in reminded:
        reminder_request(user=user, campaign=ending)
    creator = UserFactory()
    prelaunch = CampaignFactory(initiator=creator, status=CampaignStatus.APPROVED)
    notified = [UserFactory() for _ in range(30)]
    for user in notified:
        launch_notice_request(user=user, campaign=prelaunch)
    followers = [UserFactory() for _ in range(30)]
    for user in followers:
        follow_create(follower=user, creator=creator)
    campaign_launch(campaign=prelaunch, actor=creator)
    mail_folder = tmp_path / "mail"
    mail_folder.mkdir()
    env = {
        "EMAIL_BACKEND": "promotion.tests.email_backends.SlowFileBackend",
        "TEST_EMAIL_FILE_PATH": str(mail_folder),
        "TEST_EMAIL_DELAY_SECONDS": "0.05",
    }
    doomed = celery_processes("worker", **env)
    celery_processes("worker", **env)
    celery_processes("beat", SEND_DUE_NOTICES_EVERY_SECONDS="0.5")
    total = len(reminded) + len(notified) + len(followers)
    done = Notice.objects.filter(done_at__isnull=False)
    _wait_for(lambda: done.count() >= 15, what="the first e-mails", processes=celery_processes.processes, interval=0.02)
    doomed.kill()
    assert done.count() < total, "everything was sent before a worker could be killed"
    celery_processes("worker", **env)
    _wait_for(lambda: done.count() == total, what="every notice", processes=celery_processes.processes)

    assert Notice.objects.count() == total
    sent = _recipients(mail_folder)
    expected = Counter(u.email for u in reminded + notified + followers)
    assert expected - sent == Counter(), {"missing": dict(expected - sent)}
    # The one window promotion.notifications names: a worker killed between the mail server
    # taking a message and the COMMIT a moment later sends that one e-mail again. Only the
    # message in flight at the kill can be sent twice, never a batch, and never a third time.
    twice = sent - expected
    assert sum(twice.values()) <= 1, {"twice": dict(twice)}
    assert set(Notice.objects.values_list("outcome", flat=True)) == {NoticeOutcome.SENT}
    assert Notice.objects.filter(kind=NoticeKind.LAUNCH, campaign=prelaunch).count() == 60

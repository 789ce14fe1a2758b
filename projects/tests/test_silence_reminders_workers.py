"""Silence reminders under real concurrency on PostgreSQL: threads, then real Celery workers on Redis.

Each reminder is claimed with SKIP LOCKED, so two runs at once send each e-mail exactly once.
"""

import re
from datetime import timedelta
from functools import partial

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.utils import timezone

from crowdfund_site.tests.concurrency import run_together
from projects.models import CampaignStatus, CampaignStatusChange, SilenceReminder, SilenceReminderStatus
from projects.reminders import silence_reminders_create_due, silence_reminders_send_due
from projects.tests.test_silence_reminders import succeeded_campaign
from settlement.tests.test_worker import _wait_for, celery_processes  # noqa: F401 (a fixture)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: SQLite has one writer"),
]


def quiet_campaigns(count: int, *, days: int = 30):
    campaigns = [succeeded_campaign(backers=1) for _ in range(count)]
    CampaignStatusChange.objects.filter(to_status=CampaignStatus.SUCCEEDED).update(
        created_at=timezone.now() - timedelta(days=days)
    )
    return campaigns


def test_two_runs_at_once_send_each_reminder_once():
    quiet_campaigns(6)
    assert silence_reminders_create_due() == 12  # initiator and backer of each
    mail.outbox.clear()

    sent = run_together([partial(silence_reminders_send_due, batch_size=2) for _ in range(2)])

    assert sum(sent) == 12
    recipients = [(message.to[0], message.subject) for message in mail.outbox]
    assert len(recipients) == len(set(recipients)) == 12
    assert SilenceReminder.objects.filter(status=SilenceReminderStatus.SENT, recipients=1).count() == 12


@pytest.mark.worker
@pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith("redis"), reason="needs CELERY_BROKER_URL on Redis")
def test_two_workers_given_the_task_twice_each_send_every_reminder_once(celery_processes):  # noqa: F811
    campaigns = quiet_campaigns(5)
    console = {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    workers = [celery_processes("worker", **console), celery_processes("worker", **console)]
    for _ in range(4):  # beat's hourly run, delivered twice to each worker
        celery_processes.send("projects.tasks.send_silence_reminders")

    _wait_for(
        lambda: SilenceReminder.objects.filter(status=SilenceReminderStatus.SENT).count() == 10,
        what="the workers to send the 10 reminders",
        processes=workers,
    )
    for worker in workers:
        worker.stop()
    # The workers' console e-mail backend writes each message to their logs.
    logs = "".join(w.log_path.read_text(errors="replace") for w in workers)
    recipients = re.findall(r"^To: (\S+)$", logs, flags=re.MULTILINE)
    expected = [c.initiator.email for c in campaigns] + [p.backer.email for c in campaigns for p in c.pledges.all()]
    assert sorted(recipients) == sorted(expected)

"""Stretch goals under real concurrency on PostgreSQL: beat's task run twice at once unlocks and e-mails once."""

import pytest
from django.core import mail
from django.db import connection

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.concurrency import run_together
from pledges.tests.factories import pledge_held
from projects.models import StretchGoal
from projects.stretch_goals import stretch_goal_create
from projects.tasks import unlock_stretch_goals
from projects.tests.factories import LiveCampaignFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: SQLite has one writer"),
]


def test_two_runs_at_once_unlock_each_goal_once_and_email_each_backer_once():
    campaigns = [LiveCampaignFactory(goal=1_000) for _ in range(3)]
    backers = [UserFactory() for _ in range(2)]
    for campaign in campaigns:
        for amount in (2_000, 3_000):
            stretch_goal_create(campaign=campaign, actor=campaign.initiator, amount=amount, title=f"At {amount}")
        for backer in backers:
            pledge_held(campaign=campaign, backer=backer, amount=5_000)
    mail.outbox.clear()

    sent = run_together([unlock_stretch_goals for _ in range(3)])

    assert sum(sent) == 3 * 2 * 2  # campaigns x goals x backers
    sent_to = [(m.to[0], m.subject) for m in mail.outbox]
    assert len(sent_to) == len(set(sent_to)) == 12
    assert StretchGoal.objects.filter(unlocked_at__isnull=False, email_sent_at__isnull=False, recipients=2).count() == 6

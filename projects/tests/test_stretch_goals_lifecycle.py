"""Stretch goals through a campaign's life: pledges, a change down and up, a cancel, the close and settlement.

What a backer would expect: a goal unlocked stays unlocked when the total later falls below it
(they were told by e-mail); each backer hears of each goal once; the ledger is clean at each step.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client
from pledges.changes import pledge_change
from pledges.services import pledge_cancel
from pledges.tests.factories import new_key, pledge_held
from projects.models import Campaign, CampaignStatus, StretchGoal
from projects.stretch_goals import stretch_goal_create
from projects.tasks import unlock_stretch_goals
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.tests.checks import invariant_problems, net_charged
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


def _change(pledge, amount):
    return pledge_change(
        pledge=pledge, actor=pledge.backer, amount=amount, payment_token="tok_visa", idempotency_key=new_key()
    )


def _total(campaign) -> int:
    return Campaign.objects.get(pk=campaign.pk).pledged_amount


def _unlocked(*goals) -> list[bool]:
    return [StretchGoal.objects.get(pk=g.pk).unlocked_at is not None for g in goals]


def _told() -> Counter:
    """Return how many stretch-goal e-mails each (backer, goal title) got, since the outbox was cleared."""
    titles = ("Two more colours", "A hardcover edition", "A board game")
    return Counter((m.to[0], t) for m in mail.outbox for t in titles if t in m.subject)


def test_goals_unlock_through_pledge_change_cancel_and_settlement_and_each_backer_hears_once():
    campaign = LiveCampaignFactory(goal=100_000)
    first, second, third = (
        stretch_goal_create(campaign=campaign, actor=campaign.initiator, amount=amount, title=title)
        for amount, title in (
            (150_000, "Two more colours"),
            (200_000, "A hardcover edition"),
            (300_000, "A board game"),
        )
    )
    alice, bob, carol, dave = (UserFactory() for _ in range(4))
    pledge_held(campaign=campaign, backer=alice, amount=80_000)
    bobs = pledge_held(campaign=campaign, backer=bob, amount=80_000)
    mail.outbox.clear()  # the receipts

    # 1,600.00 raised: beat unlocks the first goal and tells both backers, once each.
    assert unlock_stretch_goals() == 2
    assert _unlocked(first, second, third) == [True, False, False]
    assert _told() == {(alice.email, "Two more colours"): 1, (bob.email, "Two more colours"): 1}
    unlocked_at = StretchGoal.objects.get(pk=first.pk).unlocked_at

    # Bob lowers his pledge: 1,100.00, below the first goal, which stays unlocked; nobody is told again.
    _change(bobs, 30_000)
    assert _total(campaign) == 110_000
    mail.outbox.clear()
    assert unlock_stretch_goals() == 0
    assert StretchGoal.objects.get(pk=first.pk).unlocked_at == unlocked_at
    assert [
        (g["title"], g["unlocked"]) for g in api_client().get(f"/api/v1/campaigns/{campaign.pk}/stretch-goals/").json()
    ] == [
        ("Two more colours", True),
        ("A hardcover edition", False),
        ("A board game", False),
    ]
    assert invariant_problems() == []

    # He raises it past the second goal (2,100.00): that one unlocks, the first is not announced again.
    _change(bobs, 130_000)
    assert _total(campaign) == 210_000
    assert unlock_stretch_goals() == 2
    assert _unlocked(first, second, third) == [True, True, False]
    assert _told() == {(alice.email, "A hardcover edition"): 1, (bob.email, "A hardcover edition"): 1}

    # Carol passes the third goal and cancels before beat runs: the total never stayed there, so it stays locked.
    carols = pledge_held(campaign=campaign, backer=carol, amount=100_000)
    pledge_cancel(pledge=carols, actor=carol)
    assert _total(campaign) == 210_000
    mail.outbox.clear()
    assert unlock_stretch_goals() == 0
    assert _unlocked(third) == [False]
    assert invariant_problems() == []

    # Dave's pledge in the last minute passes it; the campaign closes and settles before beat runs.
    daves = pledge_held(campaign=campaign, backer=dave, amount=100_000)
    mail.outbox.clear()
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    campaigns_close_due()
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    assert net_charged(bobs) == 130_000
    assert net_charged(daves) == 100_000
    assert net_charged(carols) == 0

    # Beat still unlocks it after the end, and tells the three backers whose money went to the campaign.
    mail.outbox.clear()
    assert unlock_stretch_goals() == 3
    assert unlock_stretch_goals() == 0
    assert _unlocked(first, second, third) == [True, True, True]
    assert _told() == {(b.email, "A board game"): 1 for b in (alice, bob, dave)}
    assert StretchGoal.objects.get(pk=third.pk).recipients == 3
    assert ledger_verify() == []
    assert invariant_problems() == []


def test_a_backer_who_cancels_after_an_unlock_keeps_it_unlocked_and_is_not_told_of_the_next():
    campaign = LiveCampaignFactory(goal=100_000)
    first = stretch_goal_create(campaign=campaign, actor=campaign.initiator, amount=150_000, title="Two more colours")
    second = stretch_goal_create(
        campaign=campaign, actor=campaign.initiator, amount=200_000, title="A hardcover edition"
    )
    leaver, stayer = UserFactory(), UserFactory()
    leavers = pledge_held(campaign=campaign, backer=leaver, amount=100_000)
    pledge_held(campaign=campaign, backer=stayer, amount=60_000)
    mail.outbox.clear()
    assert unlock_stretch_goals() == 2

    pledge_cancel(pledge=leavers, actor=leaver)
    assert _total(campaign) == 60_000  # below the campaign's own goal now
    pledge_held(campaign=campaign, amount=150_000)
    mail.outbox.clear()
    assert unlock_stretch_goals() == 2  # the stayer and the newcomer
    assert _unlocked(first, second) == [True, True]
    assert leaver.email not in {m.to[0] for m in mail.outbox}
    assert net_charged(leavers) == 0
    assert invariant_problems() == []

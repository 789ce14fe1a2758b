"""A change of amount interrupted after the new charge: the sweeper or a retry finishes it, once."""

import importlib
from datetime import timedelta
from functools import partial

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.utils import timezone

from crowdfund_site.exceptions import Conflict
from crowdfund_site.money import allocate
from escrow.ledger import account_balances
from escrow.models import LedgerTransaction, TransactionKind
from escrow.vocabulary import initiator_payout_code
from fulfilment.models import Holdback
from pledges import services
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_cancel, pledge_change_amount, refund_key
from pledges.tests.factories import new_key, pledge_held
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import campaigns_close_due, pledges_reconcile, settlement_run
from settlement.tests.checks import charge_of, invariant_problems, money_state, net_charged
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db

VISA = "tok_visa"


def change(pledge, amount, *, key):
    return pledge_change_amount(
        pledge=pledge, actor=pledge.backer, amount=amount, payment_token=VISA, idempotency_key=key
    )


def change_that_crashes(old, amount, *, dies_in: str = "_pledge_swap", key: str | None = None) -> Pledge:
    """Run a change whose process dies in ``services.<dies_in>``; return the replacement it left.

    By default it dies inside the swap's transaction, after the new charge went through: the
    transaction rolls back, as it would if the worker were killed there.
    """
    key = key or new_key()

    def dies(**kwargs):
        raise RuntimeError("worker killed")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, dies_in, dies)
        with pytest.raises(RuntimeError):
            change(old, amount, key=key)
    return Pledge.objects.get(backer=old.backer, idempotency_key=key)


def sweep() -> dict[str, int]:
    """Run the sweeper once the replacement has been pending for longer than it waits."""
    stale = timezone.now() - settings.PLEDGE_PENDING_RECONCILE_AFTER - timedelta(seconds=1)
    Pledge.objects.filter(status=PledgeStatus.PENDING).update(created_at=stale)
    return pledges_reconcile()


def totals(campaign) -> tuple[int, int]:
    campaign.refresh_from_db()
    return campaign.pledged_amount, campaign.backer_count


def claimed(reward) -> int:
    reward.refresh_from_db()
    return reward.claimed_count


def refund_posted(pledge) -> bool:
    return LedgerTransaction.objects.filter(kind=TransactionKind.REFUND, idempotency_key=refund_key(pledge.pk)).exists()


def held_by(backer) -> list[Pledge]:
    return list(Pledge.objects.filter(backer=backer, status=PledgeStatus.HELD))


def close(campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert campaigns_close_due(enqueue_settlement=False) == [campaign.pk]


def assert_left_half_done(old, new, *, before: tuple[int, int]) -> None:
    """What the crash leaves: the old pledge held and counted, the new one pending but charged."""
    old.refresh_from_db()
    assert (old.status, new.status) == (PledgeStatus.HELD, PledgeStatus.PENDING)
    assert new.replaces == old
    assert new.reward is None
    assert (net_charged(old), net_charged(new)) == (old.amount, new.amount)
    assert totals(old.campaign) == before
    assert not refund_posted(old)


@pytest.mark.parametrize(("before", "after"), [(3_000, 7_500), (7_500, 3_000)])
def test_the_sweeper_finishes_a_change_the_crash_interrupted(live_campaign, backer, before, after):
    mug = RewardTierFactory(campaign=live_campaign, minimum_amount=2_000, quantity_limit=1)
    old = pledge_held(campaign=live_campaign, backer=backer, amount=before, reward=mug)
    pledge_held(campaign=live_campaign, amount=1_000)  # someone else's pledge stays counted
    new = change_that_crashes(old, after)
    assert_left_half_done(old, new, before=(before + 1_000, 2))
    assert claimed(mug) == 1

    assert sweep() == {"pending_reconciled": 1, "refunds_sent": 0}

    old.refresh_from_db()
    new.refresh_from_db()
    assert held_by(backer) == [new]
    assert (new.amount, new.reward, new.payment_reference) == (after, mug, charge_of(new).reference)
    assert old.status == PledgeStatus.CANCELLED
    assert f"replaced by pledge #{new.pk}" in old.status_changes.last().reason
    assert refund_posted(old)
    assert (net_charged(old), net_charged(new)) == (0, after)  # paid once: the old charge came back
    assert totals(live_campaign) == (after + 1_000, 2)
    assert claimed(mug) == 1  # the last slot moved with the pledge
    assert ledger_verify() == []
    assert invariant_problems() == []

    # Running the sweeper again, or the backer's request again, changes nothing.
    state = money_state()
    assert sweep() == {"pending_reconciled": 0, "refunds_sent": 0}
    assert change(old, after, key=new.idempotency_key) == new
    assert money_state() == state


def test_after_the_sweeper_finished_it_settlement_pays_the_new_amount(backer):
    campaign = LiveCampaignFactory(goal=5_000)
    old = pledge_held(campaign=campaign, backer=backer, amount=4_000)
    new = change_that_crashes(old, 6_000)
    sweep()

    close(campaign)
    settlement_run(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    old.refresh_from_db()
    new.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    assert (old.status, new.status) == (PledgeStatus.CANCELLED, PledgeStatus.RELEASED)
    _fee, net = allocate(6_000, [campaign.platform_fee_bps, 10_000 - campaign.platform_fee_bps])
    payout = initiator_payout_code(campaign.initiator_id)
    assert account_balances(codes=[payout])[(payout, "USD")] == net
    assert invariant_problems() == []


def test_the_same_request_sent_again_after_the_crash_finishes_the_change_once(live_campaign, backer):
    reward = RewardTierFactory(campaign=live_campaign, minimum_amount=1_000, quantity_limit=3)
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=reward)
    new = change_that_crashes(old, 4_500, key="change-after-crash")
    assert_left_half_done(old, new, before=(3_000, 1))

    assert change(old, 4_500, key="change-after-crash") == new

    new.refresh_from_db()
    assert held_by(backer) == [new]
    assert new.reward == reward
    assert (net_charged(old), net_charged(new)) == (0, 4_500)
    assert charge_of(new).amount == 4_500  # charged once, under the replacement's own key
    assert totals(live_campaign) == (4_500, 1)
    assert claimed(reward) == 1
    assert invariant_problems() == []

    state = money_state()
    assert change(old, 4_500, key="change-after-crash") == new
    assert sweep() == {"pending_reconciled": 0, "refunds_sent": 0}
    assert money_state() == state


@pytest.mark.parametrize("how", ["closed", "past_deadline"])
def test_a_campaign_that_ended_meanwhile_fails_the_replacement_and_refunds_it(backer, how):
    campaign = LiveCampaignFactory(goal=3_000)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=1_000, quantity_limit=1)
    old = pledge_held(campaign=campaign, backer=backer, amount=3_000, reward=reward)
    new = change_that_crashes(old, 8_000, key="too-late")
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    if how == "closed":
        assert campaigns_close_due(enqueue_settlement=False) == [campaign.pk]

    assert sweep() == {"pending_reconciled": 1, "refunds_sent": 0}

    old.refresh_from_db()
    new.refresh_from_db()
    assert (new.status, new.failure_code) == (PledgeStatus.FAILED, "campaign_not_live")
    assert "refunded" in new.failure_message
    assert held_by(backer) == [old]
    assert old.reward == reward
    assert (net_charged(old), net_charged(new)) == (3_000, 0)
    assert not refund_posted(old)
    assert totals(campaign) == (3_000, 1)
    assert claimed(reward) == 1
    assert invariant_problems() == []
    with pytest.raises(Conflict) as refused:  # the backer's retry gets the same answer
        change(old, 8_000, key="too-late")
    assert refused.value.code == "campaign_not_live"

    if how == "past_deadline":
        assert campaigns_close_due(enqueue_settlement=False) == [campaign.pk]
    settlement_run(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    old.refresh_from_db()
    assert (campaign.status, old.status) == (CampaignStatus.SUCCEEDED, PledgeStatus.RELEASED)
    # The reward pledge's delivery holdback stays in escrow until delivery (fulfilment).
    kept = Holdback.objects.get(campaign=campaign).amount
    _fee, net = allocate(3_000 - kept, [campaign.platform_fee_bps, 10_000 - campaign.platform_fee_bps])
    payout = initiator_payout_code(campaign.initiator_id)
    assert account_balances(codes=[payout])[(payout, "USD")] == net
    assert (net_charged(old), net_charged(new)) == (3_000, 0)
    assert invariant_problems() == []


def test_an_old_pledge_the_backer_cancelled_meanwhile_fails_the_replacement(live_campaign, backer):
    reward = RewardTierFactory(campaign=live_campaign, minimum_amount=1_000, quantity_limit=1)
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=reward)
    new = change_that_crashes(old, 5_000)
    pledge_cancel(pledge=old, actor=backer)

    assert sweep() == {"pending_reconciled": 1, "refunds_sent": 0}

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == (PledgeStatus.CANCELLED, PledgeStatus.FAILED)
    assert new.failure_code == "pledge_not_held"
    assert held_by(backer) == []
    assert (net_charged(old), net_charged(new)) == (0, 0)
    assert totals(live_campaign) == (0, 0)
    assert claimed(reward) == 0
    assert invariant_problems() == []


def test_a_crash_before_the_charge_leaves_the_old_pledge_alone(live_campaign, backer):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    new = change_that_crashes(old, 5_000, dies_in="_charge")
    assert charge_of(new) is None

    assert sweep() == {"pending_reconciled": 1, "refunds_sent": 0}

    new.refresh_from_db()
    assert (new.status, new.failure_code) == (PledgeStatus.FAILED, "abandoned")
    assert held_by(backer) == [old]
    assert (net_charged(old), net_charged(new)) == (3_000, 0)
    assert totals(live_campaign) == (3_000, 1)
    assert invariant_problems() == []


def test_the_migration_links_replacements_made_before_the_field(live_campaign, backer):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    new = change_that_crashes(old, 5_000)
    ordinary = pledge_held(campaign=live_campaign, backer=backer, amount=1_000)
    Pledge.objects.filter(pk=new.pk).update(replaces=None)

    migration = importlib.import_module("pledges.migrations.0003_pledge_replaces")
    migration.link_existing_replacements(apps, None)

    assert Pledge.objects.get(pk=new.pk).replaces_id == old.pk
    assert Pledge.objects.get(pk=ordinary.pk).replaces_id is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: SQLite serialises writers")
def test_the_sweeper_and_a_retry_racing_finish_the_change_once():
    from crowdfund_site.tests.concurrency import run_together

    campaign = LiveCampaignFactory(goal=1_000)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=1_000, quantity_limit=8)
    olds = [pledge_held(campaign=campaign, amount=2_000 + i, reward=reward) for i in range(8)]
    news = [change_that_crashes(old, 5_000 + 7 * i) for i, old in enumerate(olds)]
    stale = timezone.now() - settings.PLEDGE_PENDING_RECONCILE_AFTER - timedelta(seconds=1)
    Pledge.objects.filter(status=PledgeStatus.PENDING).update(created_at=stale)
    retries = [partial(change, old, new.amount, key=new.idempotency_key) for old, new in zip(olds, news, strict=True)]

    *outcomes, _sweep, _again = run_together([*retries, pledges_reconcile, pledges_reconcile])

    assert [o.pk for o in outcomes] == [n.pk for n in news]
    held = list(Pledge.objects.filter(campaign=campaign, status=PledgeStatus.HELD).order_by("pk"))
    assert held == news
    for old, new in zip(olds, news, strict=True):
        assert (net_charged(old), net_charged(new)) == (0, new.amount)
    assert totals(campaign) == (sum(n.amount for n in news), len(news))
    assert claimed(reward) == len(news)
    assert invariant_problems() == []

"""Changing the amount of a held pledge: a replacement pledge is charged, then swapped in."""

import time
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotFound, PaymentDeclined
from crowdfund_site.money import allocate
from crowdfund_site.tests.concurrency import WAIT_SECONDS, run_together
from escrow.ledger import account_balances
from escrow.vocabulary import initiator_payout_code
from fulfilment.models import Holdback
from pledges import services
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_cancel, pledge_change_amount
from pledges.tests.factories import new_key, pledge_held
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.tests.checks import invariant_problems, money_state, net_charged
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db

VISA = "tok_visa"
DECLINED = "tok_chargeDeclined"


def change(pledge, amount, *, actor=None, token=VISA, key=None):
    return pledge_change_amount(
        pledge=pledge,
        actor=actor or pledge.backer,
        amount=amount,
        payment_token=token,
        idempotency_key=key or new_key(),
    )


def totals(campaign) -> tuple[int, int]:
    campaign.refresh_from_db()
    return campaign.pledged_amount, campaign.backer_count


def claimed(reward) -> int:
    reward.refresh_from_db()
    return reward.claimed_count


def past_deadline(campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize(("before", "after"), [(3_000, 7_500), (7_500, 3_000)])
def test_increase_or_decrease_with_a_reward(live_campaign, backer, before, after):
    sticker = RewardTierFactory(campaign=live_campaign, minimum_amount=2_000, quantity_limit=5)
    old = pledge_held(campaign=live_campaign, backer=backer, amount=before, reward=sticker)
    pledge_held(campaign=live_campaign, amount=1_000)  # someone else's pledge stays counted

    new = change(old, after)

    old.refresh_from_db()
    assert (old.status, new.status) == (PledgeStatus.CANCELLED, PledgeStatus.HELD)
    assert (new.amount, new.reward, new.backer) == (after, sticker, backer)
    assert "replaced by pledge" in old.status_changes.last().reason
    assert totals(live_campaign) == (after + 1_000, 2)
    assert claimed(sticker) == 1  # the slot moved, not doubled nor lost
    assert (net_charged(old), net_charged(new)) == (0, after)  # the old charge came back in full
    assert invariant_problems() == []


def test_decrease_without_a_reward(live_campaign, backer):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=5_000)
    new = change(old, 1_250)
    assert new.reward is None
    assert totals(live_campaign) == (1_250, 1)
    assert Pledge.objects.filter(backer=backer, status=PledgeStatus.HELD).get() == new
    assert invariant_problems() == []


def test_the_last_slot_of_a_limited_reward_moves_with_the_pledge(live_campaign, backer):
    mug = RewardTierFactory(campaign=live_campaign, minimum_amount=3_000, quantity_limit=1)
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=mug)
    new = change(old, 4_000)
    assert new.reward == mug
    assert claimed(mug) == 1
    assert invariant_problems() == []


def test_below_the_reward_minimum_is_refused_and_changes_nothing(live_campaign, backer):
    jacket = RewardTierFactory(campaign=live_campaign, title="Jacket", minimum_amount=9_000)
    old = pledge_held(campaign=live_campaign, backer=backer, amount=9_000, reward=jacket)
    before = money_state()
    with pytest.raises(InvalidInput) as error:
        change(old, 8_999)
    assert error.value.code == "below_reward_minimum"
    assert "Jacket" in error.value.message
    assert money_state() == before


@pytest.mark.parametrize(
    ("amount", "code"),
    [(5_000, "same_amount"), (0, "amount_not_positive"), (-100, "amount_not_positive"), ("50", "invalid_amount")],
)
def test_invalid_amounts_are_refused(live_campaign, backer, amount, code):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=5_000)
    before = money_state()
    with pytest.raises(InvalidInput) as error:
        change(old, amount)
    assert error.value.code == code
    assert money_state() == before


def test_above_the_pledge_maximum_is_refused(live_campaign, backer, settings):
    settings.PLEDGE_MAX_MINOR = 10_000
    old = pledge_held(campaign=live_campaign, backer=backer, amount=5_000)
    with pytest.raises(InvalidInput) as error:
        change(old, 10_001)
    assert error.value.code == "amount_too_large"


def test_a_declined_card_leaves_the_old_pledge_held(live_campaign, backer):
    sticker = RewardTierFactory(campaign=live_campaign, minimum_amount=1_000, quantity_limit=1)
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=sticker)
    with pytest.raises(PaymentDeclined):
        change(old, 6_000, token=DECLINED)
    old.refresh_from_db()
    assert old.status == PledgeStatus.HELD
    assert Pledge.objects.get(backer=backer, status=PledgeStatus.FAILED).amount == 6_000
    assert totals(live_campaign) == (3_000, 1)
    assert claimed(sticker) == 1
    assert net_charged(old) == 3_000
    assert invariant_problems() == []


def test_pressing_twice_makes_one_change(live_campaign, backer):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    first = change(old, 4_000, key="change-once")
    again = change(old, 4_000, key="change-once")
    assert again.pk == first.pk
    assert Pledge.objects.filter(backer=backer).count() == 2
    assert totals(live_campaign) == (4_000, 1)
    with pytest.raises(Conflict) as error:  # the same key for another amount
        change(old, 5_000, key="change-once")
    assert error.value.code == "idempotency_key_reused"
    # A new request against the replaced pledge is refused: change the new one instead.
    with pytest.raises(Conflict) as error:
        change(old, 5_000)
    assert error.value.code == "not_held"
    assert change(first, 5_000).amount == 5_000
    assert totals(live_campaign) == (5_000, 1)
    assert invariant_problems() == []


def test_only_the_backer_may_change_it(live_campaign, backer):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    before = money_state()
    with pytest.raises(NotFound):
        change(old, 4_000, actor=UserFactory())
    assert money_state() == before


def test_refused_once_cancelled_past_the_deadline_or_closed(live_campaign, backer):
    cancelled = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    pledge_cancel(pledge=cancelled, actor=backer)
    with pytest.raises(Conflict) as error:
        change(cancelled, 4_000)
    assert error.value.code == "not_held"

    held = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    past_deadline(live_campaign)
    with pytest.raises(Conflict) as error:
        change(held, 4_000)
    assert error.value.code == "campaign_closed"
    assert campaigns_close_due(enqueue_settlement=False) == [live_campaign.pk]
    with pytest.raises(Conflict):
        change(held, 4_000)
    held.refresh_from_db()
    assert held.status == PledgeStatus.HELD
    assert invariant_problems() == []


def test_the_campaign_closing_during_the_charge_refunds_the_new_charge(live_campaign, backer, monkeypatch):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    charge = services._charge

    def charge_then_close(**kwargs):
        result = charge(**kwargs)
        Campaign.objects.filter(pk=live_campaign.pk).update(status=CampaignStatus.CLOSING)
        return result

    monkeypatch.setattr(services, "_charge", charge_then_close)
    with pytest.raises(Conflict) as error:
        change(old, 9_000)
    assert error.value.code == "campaign_not_live"
    assert "refunded" in error.value.message
    old.refresh_from_db()
    new = Pledge.objects.get(backer=backer, amount=9_000)
    assert (old.status, new.status) == (PledgeStatus.HELD, PledgeStatus.FAILED)
    assert (net_charged(old), net_charged(new)) == (3_000, 0)
    live_campaign.refresh_from_db()
    assert (live_campaign.pledged_amount, live_campaign.backer_count) == (3_000, 1)
    assert invariant_problems() == []


def test_a_replacement_held_as_an_ordinary_pledge_is_swapped_on_retry(live_campaign, backer, monkeypatch):
    """Before replacements were linked, the sweeper held one after a crash beside the old pledge.

    (Crashes followed by the sweeper today: test_pledge_change_amount_recovery.py.)
    """
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)

    def crash(**kwargs):
        raise ConnectionError("worker died")

    monkeypatch.setattr(services, "_pledge_change_amount_complete", crash)
    with pytest.raises(ConnectionError):
        change(old, 4_000, key="crashy")
    monkeypatch.undo()
    Pledge.objects.filter(idempotency_key="crashy").update(replaces=None)  # made before the link existed
    new = Pledge.objects.get(backer=backer, idempotency_key="crashy")
    services.pledge_reconcile_pending(pledge=new)  # what the sweeper then did
    assert Pledge.objects.filter(backer=backer, status=PledgeStatus.HELD).count() == 2
    assert invariant_problems() == []

    assert change(old, 4_000, key="crashy").pk == new.pk
    assert list(Pledge.objects.filter(backer=backer, status=PledgeStatus.HELD)) == [new]
    assert totals(live_campaign) == (4_000, 1)
    assert invariant_problems() == []


def test_after_settlement_the_initiator_is_paid_the_new_amount_minus_the_fee(backer):
    campaign = LiveCampaignFactory(goal=10_000)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_000, quantity_limit=3)
    old = pledge_held(campaign=campaign, backer=backer, amount=4_000, reward=reward)
    other = pledge_held(campaign=campaign, amount=5_000)
    new = change(old, 6_543)

    past_deadline(campaign)
    assert campaigns_close_due(enqueue_settlement=False) == [campaign.pk]
    settlement_run(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    # The reward pledge's delivery holdback stays in escrow until delivery (fulfilment).
    raised = new.amount + other.amount - Holdback.objects.get(campaign=campaign).amount
    _fee, net = allocate(raised, [campaign.platform_fee_bps, 10_000 - campaign.platform_fee_bps])
    payout = initiator_payout_code(campaign.initiator_id)
    assert account_balances(codes=[payout])[(payout, "USD")] == net
    new.refresh_from_db()
    old.refresh_from_db()
    assert (old.status, new.status) == (PledgeStatus.CANCELLED, PledgeStatus.RELEASED)
    assert (net_charged(old), net_charged(new)) == (0, 6_543)
    assert invariant_problems() == []


def test_a_failed_campaign_refunds_the_new_amount_once(backer):
    campaign = LiveCampaignFactory(goal=1_000_000)
    old = pledge_held(campaign=campaign, backer=backer, amount=4_000)
    new = change(old, 2_500)
    past_deadline(campaign)
    campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    new.refresh_from_db()
    assert (campaign.status, new.status) == (CampaignStatus.FAILED, PledgeStatus.REFUNDED)
    assert (net_charged(old), net_charged(new)) == (0, 0)
    assert invariant_problems() == []


# --- The page ------------------------------------------------------------------------------------

CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


def test_change_amount_page(client, live_campaign, backer):
    RewardTierFactory(campaign=live_campaign, title="Mug", minimum_amount=2_000)
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000, reward=live_campaign.rewards.get())
    url = reverse("pledges:change_amount", kwargs={"pk": old.pk})

    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    assert client.post(url, {"amount": "40", "idempotency_key": "k", **CARD}).status_code == 404

    client.force_login(backer)
    for page in (reverse("pledges:list"), reverse("pledges:detail", kwargs={"pk": old.pk})):
        assert url in client.get(page).content.decode()
    page = client.get(url).content.decode()
    assert "$30.00" in page
    assert 'name="idempotency_key"' in page

    response = client.post(url, {"amount": "15", "idempotency_key": "k-1", **CARD})
    assert response.status_code == 200
    assert "needs a pledge of at least $20.00" in response.content.decode()
    response = client.post(url, {"amount": "12.345", "idempotency_key": "k-1", **CARD})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    response = client.post(
        url, {"amount": "45", "idempotency_key": "k-1", **{**CARD, "card_number": "4000000000000002"}}
    )
    assert "declined" in response.content.decode()
    old.refresh_from_db()
    assert old.status == PledgeStatus.HELD

    response = client.post(url, {"amount": "45.50", "idempotency_key": "k-2", **CARD}, follow=True)
    new = Pledge.objects.get(backer=backer, status=PledgeStatus.HELD)
    assert response.redirect_chain[-1][0] == reverse("pledges:detail", kwargs={"pk": new.pk})
    assert new.amount == 4_550
    assert "$45.50" in response.content.decode()
    assert "$30.00" in response.content.decode()  # the success message says what was refunded
    # The same form sent again is the same change.
    response = client.post(url, {"amount": "45.50", "idempotency_key": "k-2", **CARD})
    assert response.status_code == 302
    assert Pledge.objects.filter(backer=backer, status=PledgeStatus.HELD).get() == new
    assert invariant_problems() == []


def test_change_amount_page_needs_a_csrf_token_and_post(live_campaign, backer):
    old = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    url = reverse("pledges:change_amount", kwargs={"pk": old.pk})
    client = Client(enforce_csrf_checks=True)
    client.force_login(backer)
    form = {"amount": "40", "idempotency_key": "k", **CARD}
    assert client.post(url, form).status_code == 403
    old.refresh_from_db()
    assert old.status == PledgeStatus.HELD

    assert client.get(url).status_code == 200
    token = client.cookies["csrftoken"].value
    assert client.put(url, HTTP_X_CSRFTOKEN=token).status_code == 405
    assert client.post(url, {**form, "csrfmiddlewaretoken": token}).status_code == 302
    old.refresh_from_db()
    assert old.status == PledgeStatus.CANCELLED
    assert client.get(reverse("pledges:change_amount", kwargs={"pk": 10**9})).status_code == 404


# --- Under real concurrency (PostgreSQL) ---------------------------------------------------------


def _close_after_a_change(campaign) -> list[int]:
    give_up = time.monotonic() + WAIT_SECONDS
    while not Pledge.objects.filter(campaign=campaign, status=PledgeStatus.CANCELLED).exists():
        assert time.monotonic() < give_up, "no change ever went through"
        time.sleep(0.002)
    # Closing skips a campaign whose row a change holds locked; beat tries again a minute later.
    while not (claimed := campaigns_close_due(now=campaign.deadline, enqueue_settlement=False)):
        assert time.monotonic() < give_up, "the campaign was never closed"
        time.sleep(0.002)
    return claimed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: SQLite serialises writers")
@pytest.mark.parametrize("goal", [1_000, 100_000_000], ids=["released", "refunded"])
def test_changes_racing_the_campaign_closing_keep_money_exact(goal):
    campaign = LiveCampaignFactory(goal=goal)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=1_000, quantity_limit=12)
    backers = UserFactory.create_batch(12, password=None)
    olds = [pledge_held(campaign=campaign, backer=b, amount=2_000 + i, reward=reward) for i, b in enumerate(backers)]
    changes = [partial(change, old, 5_000 + 7 * i) for i, old in enumerate(olds)]

    *outcomes, closed = run_together([*changes, partial(_close_after_a_change, campaign)])

    assert closed == [campaign.pk]
    assert all(isinstance(o, Pledge) or (isinstance(o, Conflict) and o.code == "campaign_not_live") for o in outcomes)
    campaign.refresh_from_db()
    held = list(Pledge.objects.filter(campaign=campaign, status=PledgeStatus.HELD))
    # Every backer holds exactly one pledge, the old or the new one; the closing total is theirs.
    assert sorted(p.backer_id for p in held) == sorted(b.pk for b in backers)
    assert campaign.pledged_amount == sum(p.amount for p in held)
    assert campaign.backer_count == len(backers)
    assert claimed(reward) == len(backers)
    assert ledger_verify() == []

    settlement_run(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    released = campaign.status == CampaignStatus.SUCCEEDED
    assert released == (goal == 1_000)
    for pledge in Pledge.objects.filter(campaign=campaign):
        kept = pledge.pk in {p.pk for p in held}
        assert net_charged(pledge) == (pledge.amount if kept and released else 0)
    if released:
        # The reward pledges' delivery holdback stays in escrow until delivery (fulfilment).
        paid = campaign.pledged_amount - Holdback.objects.get(campaign=campaign).amount
        _fee, net = allocate(paid, [campaign.platform_fee_bps, 10_000 - campaign.platform_fee_bps])
        payout = initiator_payout_code(campaign.initiator_id)
        assert account_balances(codes=[payout])[(payout, "USD")] == net
    assert ledger_verify() == []

"""Managing a pledge: one open pledge per backer per campaign, changed in place by the difference."""

import importlib
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotFound, PaymentDeclined, PaymentUnavailable
from escrow.models import GatewayOperation, OperationKind, OperationStatus
from escrow.vocabulary import pledge_change_charge_key, pledge_change_refund_key, refund_key
from pledges import changes
from pledges.changes import UNCHANGED, pledge_change, pledge_changes_reconcile
from pledges.models import Pledge, PledgeChange, PledgeChangeStatus, PledgeStatus
from pledges.services import pledge_cancel, pledge_create
from pledges.tests.factories import new_key, pledge_held
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import RewardTierFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.tests.checks import invariant_problems, money_state, net_charged

pytestmark = pytest.mark.django_db

VISA = "tok_visa"


def change(pledge, amount=None, *, reward=UNCHANGED, token=VISA, key=None, actor=None):
    return pledge_change(
        pledge=pledge,
        actor=actor or pledge.backer,
        amount=amount,
        reward=reward,
        payment_token=token,
        idempotency_key=key or new_key(),
    )


def totals(campaign) -> tuple[int, int]:
    campaign.refresh_from_db()
    return campaign.pledged_amount, campaign.backer_count


def claimed(*rewards) -> list[int]:
    for reward in rewards:
        reward.refresh_from_db()
    return [reward.claimed_count for reward in rewards]


def gateway(kind):
    return list(GatewayOperation.objects.filter(kind=kind).order_by("id").values_list("idempotency_key", "amount"))


# --- One open pledge per backer per campaign --------------------------------------------------


def test_a_second_pledge_on_the_same_campaign_is_refused_with_a_pointer_to_manage(live_campaign, backer):
    first = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    before = money_state()
    with pytest.raises(Conflict) as error:
        pledge_held(campaign=live_campaign, backer=backer, amount=3_000)
    assert error.value.code == "already_backing"
    assert "Manage your pledge" in error.value.message
    assert money_state() == before  # nothing charged, nothing stored
    pledge_cancel(pledge=first, actor=backer)
    again = pledge_held(campaign=live_campaign, backer=backer, amount=3_000)  # after cancelling, a new one is fine
    assert again.status == PledgeStatus.HELD
    assert invariant_problems() == []


def test_a_declined_pledge_does_not_block_the_next_and_a_retry_still_answers(live_campaign, backer):
    key = new_key()
    args = {"backer": backer, "campaign": live_campaign, "currency": "USD", "idempotency_key": key}
    with pytest.raises(PaymentDeclined):
        pledge_create(amount=2_000, payment_token="tok_chargeDeclined", **args)
    held = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    # The same request again answers with its own (failed) pledge, not "already backing".
    with pytest.raises(PaymentDeclined):
        pledge_create(amount=2_000, payment_token="tok_chargeDeclined", **args)
    assert Pledge.objects.filter(backer=backer, status=PledgeStatus.HELD).get() == held


def test_the_database_refuses_a_second_open_pledge_but_not_a_legacy_duplicate(live_campaign, backer):
    first = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    fields = {
        "backer": backer,
        "campaign": live_campaign,
        "amount": 1_000,
        "currency": "USD",
        "request_fingerprint": "x",
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Pledge.objects.create(status=PledgeStatus.PENDING, idempotency_key=new_key(), **fields)
    legacy = Pledge.objects.create(status=PledgeStatus.HELD, legacy_duplicate=True, idempotency_key=new_key(), **fields)
    assert {first.pk, legacy.pk} == set(
        Pledge.objects.filter(backer=backer, status=PledgeStatus.HELD).values_list("pk", flat=True)
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="drops and re-adds the constraint inside the test")
def test_the_migration_flags_all_but_one_open_pledge_per_backer_and_campaign(live_campaign, backer):
    from django.apps import apps

    migration = importlib.import_module("pledges.migrations.0005_one_open_pledge_and_changes")
    constraint = next(c for c in Pledge._meta.constraints if c.name == "pledge_one_open_per_backer")
    with connection.schema_editor() as editor:
        editor.remove_constraint(Pledge, constraint)
    base = {"backer": backer, "campaign": live_campaign, "currency": "USD", "request_fingerprint": "x"}
    # As data stood before: a pending retry, the held original and a second held pledge.
    pending = Pledge.objects.create(status=PledgeStatus.PENDING, amount=100, idempotency_key=new_key(), **base)
    original = Pledge.objects.create(status=PledgeStatus.HELD, amount=200, idempotency_key=new_key(), **base)
    second = Pledge.objects.create(status=PledgeStatus.HELD, amount=300, idempotency_key=new_key(), **base)
    alone = pledge_held(campaign=live_campaign, amount=2_000)
    migration.mark_legacy_duplicates(apps, None)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # this test's inserts, checked before the DDL
    with connection.schema_editor() as editor:
        editor.add_constraint(Pledge, constraint)  # holds now
    flags = dict(Pledge.objects.values_list("pk", "legacy_duplicate"))
    assert [flags[p.pk] for p in (original, second, pending, alone)] == [False, True, True, False]


# --- Changes of amount and reward ----------------------------------------------------------------


@pytest.mark.parametrize(("before", "after"), [(3_000, 7_500), (7_500, 3_000)])
def test_a_change_keeps_the_pledge_and_moves_only_the_difference(live_campaign, backer, before, after):
    sticker = RewardTierFactory(campaign=live_campaign, minimum_amount=2_000, quantity_limit=5)
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=before, reward=sticker)
    pledge_held(campaign=live_campaign, amount=1_000)

    changed = change(pledge, after)

    assert changed.pk == pledge.pk
    assert (changed.status, changed.amount, changed.reward) == (PledgeStatus.HELD, after, sticker)
    assert totals(live_campaign) == (after + 1_000, 2)
    assert claimed(sticker) == [1]
    assert net_charged(changed) == after
    made = PledgeChange.objects.get(pledge=pledge)
    assert (made.from_amount, made.to_amount, made.status, made.actor) == (before, after, "done", backer)
    if after > before:
        assert gateway(OperationKind.CHARGE)[-1] == (pledge_change_charge_key(made.pk), after - before)
        assert gateway(OperationKind.REFUND) == []
    else:
        assert gateway(OperationKind.REFUND) == [(pledge_change_refund_key(made.pk, 0), before - after)]
    assert invariant_problems() == []


def test_up_down_up_then_cancel_refunds_each_charge_exactly(live_campaign, backer):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=1_000)
    change(pledge, 4_000)  # +3,000 charged
    change(pledge, 2_500)  # -1,500 refunded from the newest charge
    change(pledge, 6_000)  # +3,500 charged
    change(pledge, 500)  # -5,500: 3,500 + 1,500 from the two raises, then 500 from the first charge
    pledge.refresh_from_db()
    assert net_charged(pledge) == 500
    assert pledge.amount == 500
    assert invariant_problems() == []
    pledge_cancel(pledge=pledge, actor=backer)
    assert net_charged(pledge) == 0
    assert totals(live_campaign) == (0, 0)
    refunded = GatewayOperation.objects.filter(kind=OperationKind.CHARGE).values_list("refunded_amount", "amount")
    assert all(r == a for r, a in refunded)  # every charge back in full, none beyond
    assert invariant_problems() == []


@pytest.mark.parametrize("succeeds", [True, False])
def test_a_changed_pledge_settles_like_any_other(live_campaign, backer, succeeds):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    change(pledge, 9_000)
    change(pledge, 7_000)
    if succeeds:
        pledge_held(campaign=live_campaign, amount=live_campaign.goal)
    Campaign.objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    campaigns_close_due()
    settlement_run(campaign_id=live_campaign.pk)
    pledge.refresh_from_db()
    live_campaign.refresh_from_db()
    assert live_campaign.status == (CampaignStatus.SUCCEEDED if succeeds else CampaignStatus.FAILED)
    assert net_charged(pledge) == (7_000 if succeeds else 0)
    assert invariant_problems() == []


def test_reward_swap_claims_the_new_slot_and_frees_the_old(live_campaign, backer):
    sticker = RewardTierFactory(campaign=live_campaign, minimum_amount=1_000, quantity_limit=5)
    mug = RewardTierFactory(campaign=live_campaign, minimum_amount=3_000, quantity_limit=1)
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=1_500, reward=sticker)
    with pytest.raises(InvalidInput) as error:
        change(pledge, reward=mug)  # needs more than 1,500
    assert error.value.code == "below_reward_minimum"
    changed = change(pledge, 3_000, reward=mug)  # one step: raise and swap
    assert (changed.amount, changed.reward) == (3_000, mug)
    assert claimed(sticker, mug) == [0, 1]
    other = pledge_held(campaign=live_campaign, amount=1_000, reward=sticker)
    with pytest.raises(Conflict) as error:
        change(other, 3_000, reward=mug)  # the last mug is taken
    assert error.value.code == "sold_out"
    assert claimed(sticker, mug) == [1, 1]
    change(changed, reward=None)  # reward only: no money moves
    assert claimed(sticker, mug) == [1, 0]
    assert net_charged(changed) == 3_000
    assert invariant_problems() == []


def test_a_declined_raise_leaves_the_pledge_and_the_slots_as_they_were(live_campaign, backer):
    mug = RewardTierFactory(campaign=live_campaign, minimum_amount=3_000, quantity_limit=1)
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=1_000)
    with pytest.raises(PaymentDeclined):
        change(pledge, 3_000, reward=mug, token="tok_chargeDeclined")
    pledge.refresh_from_db()
    assert (pledge.amount, pledge.reward) == (1_000, None)
    assert claimed(mug) == [0]
    assert PledgeChange.objects.get().status == PledgeChangeStatus.FAILED
    assert invariant_problems() == []


def test_bad_input_is_refused_and_changes_nothing(live_campaign, backer, settings):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    before = money_state()
    for amount, code in [(0, None), (settings.PLEDGE_MAX_MINOR + 1, None), (2_000, "same_amount")]:
        with pytest.raises(InvalidInput) as error:
            change(pledge, amount)
        if code:
            assert error.value.code == code
    with pytest.raises(InvalidInput) as error:
        change(pledge, 3_000, token="")
    assert error.value.code == "payment_token_required"
    with pytest.raises(NotFound):
        change(pledge, 3_000, actor=UserFactory())
    assert money_state() == before
    key = new_key()
    change(pledge, 3_000, key=key)
    assert change(pledge, 3_000, key=key).amount == 3_000  # the same request again: nothing moves twice
    assert len(gateway(OperationKind.CHARGE)) == 2
    with pytest.raises(Conflict) as error:
        change(pledge, 4_000, key=key)
    assert error.value.code == "idempotency_key_reused"
    assert invariant_problems() == []


def test_no_change_after_the_deadline_or_once_cancelled(live_campaign, backer):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    Campaign.objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict):
        change(pledge, 3_000)
    Campaign.objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() + timedelta(days=1))
    pledge_cancel(pledge=pledge, actor=backer)
    with pytest.raises(Conflict):
        change(pledge, 3_000)


# --- Crashes ------------------------------------------------------------------------------------


def test_a_crash_between_the_charge_and_the_ledger_is_finished_by_the_sweeper(live_campaign, backer, monkeypatch):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)

    def die(**kwargs):
        raise SystemExit("killed after the charge")

    monkeypatch.setattr(changes, "_change_complete", die)
    key = new_key()
    with pytest.raises(SystemExit):
        change(pledge, 5_000, key=key)
    monkeypatch.undo()
    pledge.refresh_from_db()
    assert pledge.amount == 2_000  # charged at the gateway, not yet in the ledger
    assert gateway(OperationKind.CHARGE)[-1][1] == 3_000
    assert pledge_changes_reconcile() == {"changes_reconciled": 0, "change_refunds_sent": 0}  # not stale yet
    later = timezone.now() + timedelta(hours=1)
    assert pledge_changes_reconcile(now=later)["changes_reconciled"] == 1
    pledge.refresh_from_db()
    assert pledge.amount == 5_000
    assert totals(live_campaign) == (5_000, 1)
    assert change(pledge, 5_000, key=key).amount == 5_000  # the retry finds it done
    assert len(gateway(OperationKind.CHARGE)) == 2
    assert invariant_problems() == []


def test_a_crash_before_the_partial_refund_reaches_the_gateway_is_resent(live_campaign, backer, monkeypatch):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=5_000)
    monkeypatch.setattr(changes, "_change_send_refunds", lambda **kwargs: (_ for _ in ()).throw(SystemExit()))
    with pytest.raises(SystemExit):
        change(pledge, 2_000)
    monkeypatch.undo()
    assert gateway(OperationKind.REFUND) == []
    assert pledge_changes_reconcile()["change_refunds_sent"] == 1
    assert pledge_changes_reconcile()["change_refunds_sent"] == 0
    assert net_charged(pledge) == 2_000
    assert invariant_problems() == []


def test_a_transient_gateway_failure_keeps_the_change_pending_for_a_retry(live_campaign, backer, monkeypatch):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    monkeypatch.setattr(changes, "CHARGE_ATTEMPTS", 1)
    key = new_key()
    with pytest.raises(PaymentUnavailable):
        change(pledge, 3_000, key=key, token="tok_processingError")
    with pytest.raises(Conflict) as error:
        change(pledge, 4_000)  # one change at a time
    assert error.value.code == "change_in_progress"
    assert change(pledge, 3_000, key=key, token="tok_processingError").amount == 3_000
    assert invariant_problems() == []


def test_the_final_refund_of_an_unchanged_pledge_is_what_it_always_was(live_campaign, backer):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    pledge_cancel(pledge=pledge, actor=backer)
    assert gateway(OperationKind.REFUND) == [(refund_key(pledge.pk), 2_000)]
    assert GatewayOperation.objects.filter(kind=OperationKind.REFUND, status=OperationStatus.SUCCEEDED).count() == 1


def test_verify_ledger_names_a_pledge_whose_charges_less_refunds_differ_from_what_it_holds(live_campaign, backer):
    from escrow.ledger import ledger_accounts_get_or_create, ledger_post
    from escrow.vocabulary import pledge_change_account_specs, pledge_change_posting
    from settlement.verification import ledger_verify

    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_000)
    change(pledge, 1_500)
    assert ledger_verify() == []
    pledge_cancel(pledge=pledge, actor=backer)
    ids = {"backer_id": backer.pk, "campaign_id": live_campaign.pk}
    accounts = ledger_accounts_get_or_create(specs=pledge_change_account_specs(**ids), currency="USD")
    # A stray second refund of a difference, as a bug would post it.
    ledger_post(
        posting=pledge_change_posting(
            change_id=999_999, pledge_id=pledge.pk, difference=-500, currency="USD", accounts=accounts, **ids
        )
    )
    problems = ledger_verify()
    assert f"Pledges whose charges less refunds in the ledger differ from what they hold: {pledge.pk}" in problems
    assert f"Pledges refunded more than they were charged: {pledge.pk}" in problems


def test_a_part_refund_of_a_raised_pledge_is_spread_over_its_charges_newest_first(live_campaign, backer):
    from escrow.gateway import get_gateway
    from escrow.vocabulary_tranches import remainder_refund_charge_key, remainder_refund_key
    from pledges.selectors import pledge_partial_refund_requests

    pledge = change(pledge_held(campaign=live_campaign, backer=backer, amount=1_000), 4_000)
    requests = pledge_partial_refund_requests(
        refunds=[(pledge.pk, 3_500, pledge.payment_reference)],
        key=remainder_refund_key,
        charge_key=remainder_refund_charge_key,
    )
    made = PledgeChange.objects.get()
    assert [(r.idempotency_key, r.charge_reference, r.amount) for r in requests] == [
        (remainder_refund_charge_key(pledge.pk, 1), made.charge_reference, 3_000),
        (remainder_refund_key(pledge.pk), pledge.payment_reference, 500),
    ]
    assert all(result.ok for result in get_gateway().refund_many(requests=requests))
    assert net_charged(pledge) == 500

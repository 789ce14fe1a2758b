"""A reward tier never shipped: staff declare it not delivered past its deadline and its backers
get their parts of the holdback back, once, through the gateway; the console lists such tiers."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.roles import FINANCE, REVIEWERS
from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import allocate, format_amount
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import charge_key, initiator_payout_code
from fulfilment.models import Delivery, DeliveryStatus, Holdback, NonDelivery, Shipment
from fulfilment.selectors import delivery_record_of, tiers_overdue_for_delivery
from fulfilment.services import tier_declare_not_delivered, tier_mark_shipped
from pledges.models import Pledge
from projects.models import Campaign, RewardTier
from settlement.holdback import holdbacks_settle_ready
from settlement.money import campaign_money
from settlement.verification import ledger_verify

from .helpers import balance, finance_user, funded_campaign_with_rewards, holdback_balance, overdue_campaign, succeed

pytestmark = pytest.mark.django_db

GRACE = settings.FULFILMENT_NOT_DELIVERED_GRACE_DAYS


def _refunded(pledge_ids):
    charges = dict(
        GatewayOperation.objects.filter(
            kind=OperationKind.CHARGE, idempotency_key__in=[charge_key(pk) for pk in pledge_ids]
        ).values_list("idempotency_key", "refunded_amount")
    )
    return [charges[charge_key(pk)] for pk in pledge_ids]


def test_a_tier_never_shipped_is_declared_not_delivered_and_its_backers_get_their_parts_back_once(settings):
    settings.HOLDBACK_REFUND_BATCH_SIZE = 2  # several batches for one tier
    amounts = [1_001, 2_003, 3_007, 999, 5_011, 7_013, 333]
    campaign, (lost, sent) = overdue_campaign(amounts)
    kept = Holdback.objects.get(campaign=campaign).amount
    lost_pledges = list(Pledge.objects.filter(reward=lost).order_by("id").values_list("pk", "amount"))
    paid_out = balance(initiator_payout_code(campaign.initiator_id))
    assert list(tiers_overdue_for_delivery().values_list("pk", flat=True)) == [lost.pk, sent.pk]
    tier_mark_shipped(tier_id=sent.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    assert list(tiers_overdue_for_delivery().values_list("pk", flat=True)) == [lost.pk]

    staff = finance_user()
    declaration = tier_declare_not_delivered(tier_id=lost.pk, actor=staff, reason="Initiator unreachable since May.")
    assert tiers_overdue_for_delivery().count() == 0
    assert set(Delivery.objects.filter(tier=lost).values_list("status", flat=True)) == {DeliveryStatus.UNSHIPPED}
    event = AuditEvent.objects.get(action="tier_declare_not_delivered")
    assert (event.actor, event.reason) == (staff, "Initiator unreachable since May.")

    assert holdbacks_settle_ready() == [lost.pk]
    assert holdbacks_settle_ready() == []  # a second sweep refunds nobody again
    # Each backer gets their pro-rata share of the holdback (largest remainder over what each
    # paid, fixed at success), never above what they paid.
    all_paid = [
        amount for _, amount in Pledge.objects.filter(campaign=campaign).order_by("id").values_list("pk", "amount")
    ]
    shares = dict(
        zip(
            Pledge.objects.filter(campaign=campaign).order_by("id").values_list("pk", flat=True),
            allocate(kept, all_paid),
            strict=True,
        )
    )
    expected = [shares[pk] for pk, _ in lost_pledges]
    assert _refunded([pk for pk, _ in lost_pledges]) == expected
    assert all(0 < part <= paid for part, (_, paid) in zip(expected, lost_pledges, strict=True))
    refunds = GatewayOperation.objects.filter(kind=OperationKind.REFUND)
    assert refunds.count() == len(lost_pledges)
    declaration.refresh_from_db()
    assert declaration.settled_at is not None
    assert declaration.refunded_amount == sum(expected)
    # The initiator got nothing more; the shipped tier's parts are still held.
    assert balance(initiator_payout_code(campaign.initiator_id)) == paid_out
    assert holdback_balance(campaign) == kept - sum(expected)
    money = campaign_money(campaign=Campaign.objects.get(pk=campaign.pk))
    assert (money.holdback_refunded, money.holdback_held) == (sum(expected), kept - sum(expected))
    assert ledger_verify() == []


def test_my_pledges_tells_the_backer_the_reward_never_shipped_and_their_part_came_back(client):
    _, (lost, _) = overdue_campaign([4_000, 6_000])
    pledge = Pledge.objects.get(reward=lost)
    tier_declare_not_delivered(tier_id=lost.pk, actor=finance_user(), reason="Never shipped.")
    holdbacks_settle_ready()
    client.force_login(pledge.backer)
    page = client.get(reverse("pledges:list")).content.decode()
    assert "never shipped: staff declared it not delivered" in page
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = client.get(reverse("pledges:list")).content.decode()
    assert "工作人员已认定未交付" in page


def test_a_tier_without_an_estimate_is_due_from_the_campaign_deadline():
    campaign, (tier, _) = funded_campaign_with_rewards(amounts=[4_000, 6_000])
    campaign = succeed(campaign)  # deadline: a moment ago
    assert tier.estimated_delivery is None
    with pytest.raises(Conflict, match="not overdue") as refused:
        tier_declare_not_delivered(tier_id=tier.pk, actor=finance_user(), reason="x")
    first_day = timezone.localdate(campaign.deadline) + timedelta(days=GRACE + 1)
    assert first_day.isoformat() in refused.value.message
    declared = tier_declare_not_delivered(tier_id=tier.pk, actor=finance_user(), reason="x", today=first_day)
    assert declared.tier_id == tier.pk


def test_bad_input_is_refused_clearly_and_changes_nothing():
    campaign, (lost, sent) = overdue_campaign([4_000, 6_000, 8_000])
    staff = finance_user()
    tier_mark_shipped(tier_id=sent.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    deliveries = sorted(Delivery.objects.values_list("pk", "status"))

    with pytest.raises(Conflict, match="marked shipped"):
        tier_declare_not_delivered(tier_id=sent.pk, actor=staff, reason="Nothing came.")
    with pytest.raises(NotAllowed):
        tier_declare_not_delivered(tier_id=lost.pk, actor=campaign.initiator, reason="Nothing came.")
    with pytest.raises(NotAllowed):
        tier_declare_not_delivered(tier_id=lost.pk, actor=None, reason="Nothing came.")
    with pytest.raises(InvalidInput, match="required"):
        tier_declare_not_delivered(tier_id=lost.pk, actor=staff, reason="   ")
    not_yet = timezone.localdate() - timedelta(days=1)
    with pytest.raises(Conflict, match="not overdue"):
        tier_declare_not_delivered(tier_id=lost.pk, actor=staff, reason="Nothing came.", today=not_yet)
    assert NonDelivery.objects.count() == 0
    assert sorted(Delivery.objects.values_list("pk", "status")) == deliveries
    assert not AuditEvent.objects.filter(action="tier_declare_not_delivered").exists()

    tier_declare_not_delivered(tier_id=lost.pk, actor=staff, reason="Nothing came.")
    with pytest.raises(Conflict, match="already declared"):
        tier_declare_not_delivered(tier_id=lost.pk, actor=staff, reason="Again.")
    with pytest.raises(Conflict, match="declared this reward not delivered"):
        tier_mark_shipped(tier_id=lost.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    holdbacks_settle_ready()
    with pytest.raises(Conflict, match="already declared"):
        tier_declare_not_delivered(tier_id=lost.pk, actor=staff, reason="After the refund.")
    assert NonDelivery.objects.count() == 1
    assert Shipment.objects.count() == 1
    assert GatewayOperation.objects.filter(kind=OperationKind.REFUND).count() == 2
    assert AuditEvent.objects.filter(action="tier_declare_not_delivered").count() == 1
    assert ledger_verify() == []


def test_a_tier_without_holdback_parts_cannot_be_declared():
    campaign, (tier,) = funded_campaign_with_rewards(amounts=[4_000], tiers=1, holdback_bps=0)
    RewardTier.objects.filter(pk=tier.pk).update(estimated_delivery=timezone.localdate() - timedelta(days=GRACE + 1))
    succeed(campaign)
    with pytest.raises(Conflict, match="no part of a holdback"):
        tier_declare_not_delivered(tier_id=tier.pk, actor=finance_user(), reason="x")
    assert NonDelivery.objects.count() == 0


def _staff(group: str):
    call_command("setup_staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_finance_sees_overdue_tiers_and_declares_one_with_a_reason_audited_and_once(
    client, celery_eager, django_capture_on_commit_callbacks
):
    campaign, (lost, sent) = overdue_campaign([4_000, 6_000])
    tier_mark_shipped(tier_id=sent.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    user = _staff(FINANCE)
    client.force_login(user)
    changelist = reverse("admin:fulfilment_overduetier_changelist")
    page = client.get(changelist).content.decode()
    assert lost.title in page
    assert sent.title not in page
    held = sum(Delivery.objects.filter(tier=lost).values_list("part", flat=True))
    assert format_amount(held, campaign.currency) in page  # what declaring it would refund
    asked = client.post(changelist, {"action": "declare_not_delivered", "_selected_action": [lost.pk]})
    assert asked.status_code == 200  # the reason form; nothing declared yet
    assert "reason" in asked.content.decode()
    assert NonDelivery.objects.count() == 0
    data = {"action": "declare_not_delivered", "_selected_action": [lost.pk], "apply": "1", "reason": "Gone quiet"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(changelist, data)
    declaration = NonDelivery.objects.get(tier=lost)
    assert (declaration.declared_by, declaration.reason) == (user, "Gone quiet")
    # Its backers' parts went back right after the declaration, not at beat's next sweep.
    assert declaration.settled_at is not None
    assert declaration.refunded_amount == held > 0
    assert AuditEvent.objects.filter(action="tier_declare_not_delivered", actor=user, outcome="done").count() == 1
    assert lost.title not in client.get(changelist).content.decode()
    client.post(changelist, data)  # a second post: the tier is no longer listed, nothing happens
    assert NonDelivery.objects.count() == 1
    assert AuditEvent.objects.filter(action="tier_declare_not_delivered").count() == 1


def test_reviewers_neither_see_nor_declare_overdue_tiers(client):
    overdue_campaign([4_000, 6_000])
    lost = RewardTier.objects.order_by("pk").first()
    client.force_login(_staff(REVIEWERS))
    changelist = reverse("admin:fulfilment_overduetier_changelist")
    assert client.get(changelist).status_code == 403
    response = client.post(
        changelist, {"action": "declare_not_delivered", "_selected_action": [lost.pk], "apply": "1", "reason": "x"}
    )
    assert response.status_code == 403
    assert NonDelivery.objects.count() == 0


def test_the_initiators_delivery_record_counts_a_tier_declared_not_delivered(client):
    campaign, (lost, _) = overdue_campaign([4_000, 6_000, 8_000])
    tier_declare_not_delivered(tier_id=lost.pk, actor=finance_user(), reason="Never shipped.")
    record = delivery_record_of(initiator_id=campaign.initiator_id)
    assert (record.rewards_not_delivered, record.refunded_backers, record.empty) == (1, 2, False)
    client.force_login(UserFactory())  # not served from the page cache
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Rewards never shipped (declared not delivered): 1" in page
    assert "Backers refunded for non-delivery: 2" in page


def test_backers_and_the_initiator_are_told_once_in_their_language(celery_eager, django_capture_on_commit_callbacks):
    from django.core import mail

    campaign, (lost, _) = overdue_campaign([4_000, 6_000, 8_000])
    backers = [p.backer for p in Pledge.objects.filter(reward=lost).select_related("backer").order_by("id")]
    type(backers[0]).objects.filter(pk=backers[0].pk).update(preferred_language="zh-hans")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tier_declare_not_delivered(tier_id=lost.pk, actor=finance_user(), reason="Initiator unreachable.")
    assert sorted(m.to[0] for m in mail.outbox) == sorted([campaign.initiator.email] + [b.email for b in backers])
    to_backer = next(m for m in mail.outbox if m.to == [backers[1].email])
    assert "your part of the delivery holdback is refunded" in to_backer.body
    assert "Initiator unreachable." in to_backer.body
    assert "已被认定未交付" in next(m for m in mail.outbox if m.to == [backers[0].email]).subject
    to_initiator = next(m for m in mail.outbox if m.to == [campaign.initiator.email])
    assert "each of its backers gets their part" in to_initiator.body

"""Finance through the API: the list of rewards overdue for delivery, and declaring one not delivered,
which refunds its backers' parts of the holdback once, under an Idempotency-Key."""

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory, ReviewerFactory, UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from escrow.models import GatewayOperation, OperationKind
from fulfilment.models import Delivery, DeliveryStatus, NonDelivery
from fulfilment.selectors import not_delivered_after
from fulfilment.services import tier_mark_shipped
from pledges.models import Pledge
from settlement.holdback import holdbacks_settle_ready
from settlement.verification import ledger_verify

from .helpers import holdback_balance, overdue_campaign

pytestmark = pytest.mark.django_db

OVERDUE = "/api/v1/deliveries/overdue/"


@pytest.fixture(autouse=True)
def _fresh_throttles_and_staff_groups():
    cache.clear()
    # The migration that makes the groups predates delivery; this gives Finance its permissions.
    call_command("setup_staff_groups", verbosity=0)


REASON = {"reason": "The initiator stopped answering in May."}


def _declare(client, tier_id, *, key="nd-1", body=REASON):
    return client.post(f"/api/v1/rewards/{tier_id}/not-delivered/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _parts(tier):
    return sum(Delivery.objects.filter(tier=tier).values_list("part", flat=True))


def _refunds():
    return GatewayOperation.objects.filter(kind=OperationKind.REFUND).count()


def test_finance_lists_overdue_rewards_declares_one_and_its_backers_get_their_parts_back_once(
    celery_eager, django_capture_on_commit_callbacks
):
    campaign, (lost, sent) = overdue_campaign([1_001, 2_003, 3_007, 999, 5_011])
    kept = holdback_balance(campaign)
    finance = api_client(FinanceFactory())

    listed = finance.get(OVERDUE)
    assert listed.status_code == 200, listed.content
    rows = {row["reward"]: row for row in listed.json()["results"]}
    assert set(rows) == {lost.pk, sent.pk}
    row = rows[lost.pk]
    assert (row["title"], row["campaign"], row["campaign_slug"], row["currency"]) == (
        lost.title,
        campaign.pk,
        campaign.slug,
        "USD",
    )
    assert row["backers"] == Pledge.objects.filter(reward=lost).count() == 3
    assert row["holdback_held"] == _parts(lost) > 0
    lost.refresh_from_db()
    assert row["delivery_due"] == lost.estimated_delivery.isoformat()
    assert row["declarable_from"] == not_delivered_after(lost.estimated_delivery).isoformat()
    assert row["declarable_from"] <= timezone.localdate().isoformat()

    with django_capture_on_commit_callbacks(execute=True):
        declared = _declare(finance, lost.pk)
    assert declared.status_code == 201, declared.content
    body = declared.json()
    assert (body["reward"], body["campaign"], body["reason"]) == (lost.pk, campaign.pk, REASON["reason"])
    # The refunds ran right after the declaration committed, not at beat's next sweep.
    declaration = NonDelivery.objects.get(tier=lost)
    assert declaration.settled_at is not None
    assert declaration.refunded_amount == _parts(lost)
    assert set(Delivery.objects.filter(tier=lost).values_list("status", flat=True)) == {DeliveryStatus.UNSHIPPED}
    assert _refunds() == 3
    assert holdback_balance(campaign) == kept - _parts(lost)
    assert AuditEvent.objects.filter(action="tier_declare_not_delivered", reason=body["reason"]).count() == 1

    # A retry under the same key answers the first response and refunds nobody again.
    again = _declare(finance, lost.pk)
    assert (again.status_code, again.content) == (201, declared.content)
    assert again["Idempotent-Replayed"] == "true"
    # Under a new key it is refused: the tier is settled.
    assert_error(_declare(finance, lost.pk, key="nd-2"), 409, "already_refunded")
    assert holdbacks_settle_ready() == []
    assert _refunds() == 3
    assert [row["reward"] for row in finance.get(OVERDUE).json()["results"]] == [sent.pk]
    assert ledger_verify() == []


def test_a_declaration_whose_refunds_have_not_run_yet_is_refused_as_already_declared():
    _, (lost, _) = overdue_campaign([4_000, 6_000])
    finance = api_client(FinanceFactory())
    assert _declare(finance, lost.pk).status_code == 201  # its refund task is not run here
    assert NonDelivery.objects.get(tier=lost).settled_at is None
    assert_error(_declare(finance, lost.pk, key="nd-2"), 409, "already_declared")
    assert _refunds() == 0


def test_bad_input_and_the_wrong_caller_are_refused_clearly_and_change_nothing():
    campaign, (lost, sent) = overdue_campaign([4_000, 6_000, 8_000])
    tier_mark_shipped(tier_id=sent.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    finance = api_client(FinanceFactory())
    deliveries = sorted(Delivery.objects.values_list("pk", "status"))

    missing_key = finance.post(f"/api/v1/rewards/{lost.pk}/not-delivered/", {"reason": "x"}, format="json")
    assert_error(missing_key, 400, "idempotency_key_required")
    for n, body in enumerate(
        [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 2001}, {"reason": 7}, {"reason": "x", "extra": 1}]
    ):
        assert_error(_declare(finance, lost.pk, key=f"bad-{n}", body=body), 400)
    for user in [UserFactory(), campaign.initiator, ReviewerFactory(), UserFactory(is_staff=True)]:
        assert_error(_declare(api_client(user), lost.pk), 403, "not_staff")
        assert_error(api_client(user).get(OVERDUE), 403, "not_staff")
    assert _declare(api_client(), lost.pk).status_code == 401
    assert api_client().get(OVERDUE).status_code == 401
    assert_error(_declare(finance, 999_999_999), 404, "not_found")
    assert_error(_declare(finance, sent.pk, key="shipped"), 409, "already_shipped")
    assert_error(finance.get(OVERDUE, {"page": "0"}), 400)
    assert_error(finance.get(OVERDUE, {"page": "9"}), 404)
    assert_error(finance.get(OVERDUE, {"page_size": "1000"}), 400)

    assert NonDelivery.objects.count() == 0
    assert sorted(Delivery.objects.values_list("pk", "status")) == deliveries
    assert not AuditEvent.objects.filter(action="tier_declare_not_delivered", outcome="done").exists()
    assert _refunds() == 0


def test_a_reward_not_overdue_yet_is_refused_with_the_day_it_may_be_declared():
    _, (lost, _) = overdue_campaign([4_000, 6_000])
    type(lost).objects.filter(pk=lost.pk).update(estimated_delivery=timezone.localdate())
    finance = api_client(FinanceFactory())
    assert finance.get(OVERDUE).json()["count"] == 1  # only the other tier
    refused = assert_error(_declare(finance, lost.pk), 409, "not_overdue")
    assert not_delivered_after(timezone.localdate()).isoformat() in refused["detail"]
    assert NonDelivery.objects.count() == 0

"""The delivery holdback through the real services and the sandbox gateway: kept, shipped, settled."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crowdfund_site.exceptions import Conflict, NotFound
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import PLATFORM_REVENUE, initiator_payout_code
from fulfilment.models import Delivery, DeliveryReport, DeliveryStatus, Holdback, Shipment
from fulfilment.services import (
    deliveries_resolve_silent,
    delivery_confirm,
    delivery_report,
    report_answer,
    report_decide,
    tier_mark_shipped,
)
from pledges.models import Pledge
from settlement.holdback import holdbacks_settle_ready
from settlement.verification import ledger_verify

from .helpers import balance, finance_user, funded_campaign_with_rewards, holdback_balance, succeed

pytestmark = pytest.mark.django_db


def test_success_keeps_ten_percent_of_reward_pledges_back_from_the_payout():
    campaign, _ = funded_campaign_with_rewards(amounts=[10_000, 20_000, 30_000])
    campaign = succeed(campaign)
    assert Holdback.objects.get(campaign=campaign).amount == 6_000
    assert holdback_balance(campaign) == 6_000
    # 54,000 released: 5 % fee, the rest paid out.
    assert balance(PLATFORM_REVENUE) == 2_700
    assert balance(initiator_payout_code(campaign.initiator_id)) == 51_300
    assert sorted(Delivery.objects.values_list("part", flat=True)) == [1_000, 2_000, 3_000]
    assert ledger_verify() == []


def test_a_campaign_choosing_no_holdback_releases_everything():
    campaign, _ = funded_campaign_with_rewards(amounts=[10_000], holdback_bps=0)
    campaign = succeed(campaign)
    assert holdback_balance(campaign) == 0
    assert balance(initiator_payout_code(campaign.initiator_id)) == 9_500
    assert ledger_verify() == []


def test_holdback_released_in_part_and_refunded_in_part():
    campaign, (tier_a, tier_b) = funded_campaign_with_rewards(amounts=[10_000, 20_000, 30_000, 40_000])
    campaign = succeed(campaign)
    pledges = list(Pledge.objects.filter(campaign=campaign).order_by("id"))  # a, b, a, b
    initiator = campaign.initiator
    today = timezone.localdate()
    tier_mark_shipped(tier_id=tier_a.pk, actor=initiator, shipped_on=today, note="Posted", tracking_reference="TRK1")
    tier_mark_shipped(tier_id=tier_b.pk, actor=initiator, shipped_on=today - timedelta(days=31))
    delivery_confirm(pledge_id=pledges[0].pk, actor=pledges[0].backer)
    report = delivery_report(pledge_id=pledges[2].pk, actor=pledges[2].backer, message="Never came.")
    report_answer(report_id=report.pk, actor=initiator, answer="Sorry, it was lost.")
    report_decide(report_id=report.pk, actor=finance_user(), upheld=True, reason="Carrier lost it.")
    # Tier b: silence past 30 days counts as received, once.
    assert deliveries_resolve_silent() == [tier_b.pk]
    assert deliveries_resolve_silent() == []
    assert sorted(holdbacks_settle_ready()) == [tier_a.pk, tier_b.pk]
    assert holdbacks_settle_ready() == []
    charge = GatewayOperation.objects.get(kind=OperationKind.CHARGE, idempotency_key=f"charge:pledge:{pledges[2].pk}")
    assert charge.refunded_amount == 3_000  # exactly its part, once
    assert Shipment.objects.get(tier=tier_a).released_amount == 1_000
    assert Shipment.objects.get(tier=tier_b).released_amount == 6_000
    assert holdback_balance(campaign) == 0
    # At success 90,000 released; then 7,000 more: fees 5 % of both.
    assert balance(PLATFORM_REVENUE) == 4_500 + 350
    assert balance(initiator_payout_code(campaign.initiator_id)) == 85_500 + 6_650
    assert ledger_verify() == []


def test_bad_input_changes_nothing():
    campaign, (tier_a, _) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    mine, other = Pledge.objects.filter(campaign=campaign).order_by("id")
    with pytest.raises(Conflict):  # not shipped yet
        delivery_confirm(pledge_id=mine.pk, actor=mine.backer)
    tier_mark_shipped(tier_id=tier_a.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    with pytest.raises(Conflict, match="already marked shipped"):
        tier_mark_shipped(tier_id=tier_a.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    with pytest.raises(NotFound):
        tier_mark_shipped(tier_id=tier_a.pk, actor=mine.backer, shipped_on=timezone.localdate())
    with pytest.raises(NotFound):  # someone else's pledge
        delivery_confirm(pledge_id=mine.pk, actor=other.backer)
    assert Delivery.objects.get(pledge=mine).status == DeliveryStatus.WAITING
    report = delivery_report(pledge_id=mine.pk, actor=mine.backer, message="Not here.")
    finance = finance_user()
    report_decide(report_id=report.pk, actor=finance, upheld=False, reason="Signed for.")
    with pytest.raises(Conflict, match="already decided"):
        report_decide(report_id=report.pk, actor=finance, upheld=True, reason="Changed my mind.")
    assert DeliveryReport.objects.get(pk=report.pk).decision == "dismissed"
    assert Delivery.objects.get(pledge=mine).status == DeliveryStatus.DISMISSED
    with pytest.raises(Exception, match="At most 2000"):
        delivery_report(pledge_id=other.pk, actor=other.backer, message="x" * 10_000)
    assert Shipment.objects.count() == 1
    assert ledger_verify() == []


def test_money_page_shows_the_holdback_and_verify_ledger_catches_a_refund_above_the_part(client):
    campaign, (tier_a, _) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    page = client.get(f"/campaigns/{campaign.slug}/money/")
    assert page.status_code == 200
    assert "Delivery holdback kept until rewards arrive" in page.content.decode()
    assert 'id="money-holdback-held">$30.00' in page.content.decode()
    pledge = Pledge.objects.filter(campaign=campaign).order_by("id").first()
    tier_mark_shipped(tier_id=tier_a.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    report = delivery_report(pledge_id=pledge.pk, actor=pledge.backer, message="No.")
    report_decide(report_id=report.pk, actor=finance_user(), upheld=True, reason="Lost.")
    holdbacks_settle_ready()
    assert ledger_verify() == []
    Delivery.objects.filter(pledge=pledge).update(part=0, refunded_amount=0)
    problems = ledger_verify()
    assert any("more of the holdback than their part" in p for p in problems)
    assert any("Holdback differs" in p for p in problems)


def test_each_step_someone_must_act_on_sends_an_email(celery_eager, django_capture_on_commit_callbacks):
    from django.core import mail

    campaign, (tier_a, _) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    pledge = Pledge.objects.filter(campaign=campaign, reward=tier_a).get()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tier_mark_shipped(tier_id=tier_a.pk, actor=campaign.initiator, shipped_on=timezone.localdate())
    assert [m.to for m in mail.outbox] == [[pledge.backer.email]]
    assert "has shipped" in mail.outbox[0].subject
    assert "/pledges/" in mail.outbox[0].body
    with django_capture_on_commit_callbacks(execute=True):
        report = delivery_report(pledge_id=pledge.pk, actor=pledge.backer, message="Box was empty.")
    assert mail.outbox[-1].to == [campaign.initiator.email]
    assert "Box was empty." in mail.outbox[-1].body
    with django_capture_on_commit_callbacks(execute=True):
        report_decide(report_id=report.pk, actor=finance_user(), upheld=True, reason="Photo of the empty box.")
    assert sorted(m.to[0] for m in mail.outbox[-2:]) == sorted([pledge.backer.email, campaign.initiator.email])
    assert "Photo of the empty box." in mail.outbox[-1].body


def test_the_api_refuses_bad_input_with_clear_errors_and_changes_nothing(client):
    campaign, (tier_a, _) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    mine, other = Pledge.objects.filter(campaign=campaign).order_by("id")
    client.force_login(campaign.initiator)
    shipped = client.post(
        f"/api/v1/rewards/{tier_a.pk}/shipment/",
        {"shipped_on": str(timezone.localdate())},
        content_type="application/json",
    )
    assert shipped.status_code == 201
    again = client.post(
        f"/api/v1/rewards/{tier_a.pk}/shipment/",
        {"shipped_on": str(timezone.localdate())},
        content_type="application/json",
    )
    assert again.status_code == 409
    assert "already marked shipped" in again.content.decode()
    client.force_login(other.backer)
    assert client.post(f"/api/v1/pledges/{mine.pk}/delivery/received/").status_code == 404
    client.force_login(mine.backer)
    too_long = client.post(
        f"/api/v1/pledges/{mine.pk}/delivery/report/", {"message": "x" * 10_000}, content_type="application/json"
    )
    assert too_long.status_code == 400
    assert Delivery.objects.get(pledge=mine).status == DeliveryStatus.WAITING
    confirmed = client.post(f"/api/v1/pledges/{mine.pk}/delivery/received/")
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "received"
    assert client.get("/api/v1/me/deliveries/").json()[0]["status"] == "received"
    assert (
        client.post(
            "/api/v1/delivery-reports/1/decision/", {"upheld": True, "reason": "x"}, content_type="application/json"
        ).status_code
        == 403
    )

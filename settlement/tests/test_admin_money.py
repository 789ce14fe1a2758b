"""Money in the operators' console: refunds, the read-only ledger, verification, operations,
the audit log and least privilege, through the admin URLs with the test client."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory, ReviewerFactory, StaffFactory, UserFactory
from escrow.models import GatewayOperation, LedgerEntry, LedgerTransaction
from pledges.models import PledgeStatus
from pledges.services import pledge_create
from projects.models import Campaign, CampaignStatus
from settlement.services import campaigns_close_due
from settlement.verification import ledger_verify


def admin_action(client, url, action, ids, **extra):
    return client.post(url, {"action": action, "_selected_action": [str(i) for i in ids], **extra}, follow=True)


@pytest.fixture
def held_pledge(db, live_campaign):
    return pledge_create(
        backer=UserFactory(),
        campaign=live_campaign,
        amount=4_200,
        currency="USD",
        payment_token="tok_visa",
        idempotency_key="admin-money",
    )


@pytest.mark.django_db
def test_finance_refunds_a_held_pledge_with_a_reason_through_the_refund_service(client, held_pledge):
    finance = FinanceFactory()
    client.force_login(finance)
    url = reverse("admin:pledges_pledge_changelist")

    asked = admin_action(client, url, "refund", [held_pledge.pk])
    held_pledge.refresh_from_db()
    assert held_pledge.status == PledgeStatus.HELD
    assert "Refund pledges" in asked.content.decode()

    admin_action(client, url, "refund", [held_pledge.pk], apply="1", reason="Backer reported fraud on the card.")

    held_pledge.refresh_from_db()
    assert held_pledge.status == PledgeStatus.REFUNDED
    assert GatewayOperation.objects.filter(
        idempotency_key=f"refund:pledge:{held_pledge.pk}", status="succeeded"
    ).exists()
    assert ledger_verify() == []
    event = AuditEvent.objects.get(action="pledge_refund")
    assert (event.actor, event.reason, event.outcome) == (finance, "Backer reported fraud on the card.", "done")


@pytest.mark.django_db
def test_refunding_a_pledge_that_is_not_held_is_refused_and_audited(client, held_pledge):
    client.force_login(FinanceFactory())
    url = reverse("admin:pledges_pledge_changelist")
    admin_action(client, url, "refund", [held_pledge.pk], apply="1", reason="first")

    again = admin_action(client, url, "refund", [held_pledge.pk], apply="1", reason="second")

    assert "cannot be refunded" in again.content.decode()
    assert GatewayOperation.objects.filter(kind="refund").count() == 1
    assert AuditEvent.objects.filter(action="pledge_refund", outcome="refused").count() == 1


@pytest.mark.django_db
def test_a_reviewer_cannot_refund(client, held_pledge):
    client.force_login(ReviewerFactory())

    response = admin_action(
        client, reverse("admin:pledges_pledge_changelist"), "refund", [held_pledge.pk], apply="1", reason="x"
    )

    held_pledge.refresh_from_db()
    assert held_pledge.status == PledgeStatus.HELD
    assert response.status_code == 403


@pytest.mark.django_db
def test_no_admin_user_can_add_change_or_delete_ledger_rows(client, held_pledge):
    client.force_login(StaffFactory())  # a superuser
    txn = LedgerTransaction.objects.get(reference=f"pledge:{held_pledge.pk}")
    entry = txn.entries.first()

    for model in ("ledgertransaction", "ledgerentry", "ledgeraccount"):
        assert client.get(reverse(f"admin:escrow_{model}_add")).status_code == 403
    client.post(reverse("admin:escrow_ledgerentry_change", args=[entry.pk]), {"amount": 1})
    assert client.post(reverse("admin:escrow_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert (
        client.post(reverse("admin:escrow_ledgertransaction_delete", args=[txn.pk]), {"post": "yes"}).status_code == 403
    )

    entry.refresh_from_db()
    assert entry.amount in (4_200, -4_200)
    assert LedgerEntry.objects.filter(transaction=txn).count() == 2
    # The ledger is still there to be looked at.
    assert client.get(reverse("admin:escrow_ledgertransaction_change", args=[txn.pk])).status_code == 200


@pytest.mark.django_db
def test_ledger_accounts_show_their_balances(client, held_pledge):
    client.force_login(FinanceFactory())

    page = client.get(reverse("admin:escrow_ledgeraccount_changelist")).content.decode()

    assert f"campaign:{held_pledge.campaign_id}:escrow" in page
    assert "$42.00" in page
    assert "-$42.00" in page or "$-42.00" in page


@pytest.mark.django_db
def test_finance_runs_the_ledger_verification_page(client, held_pledge):
    client.force_login(FinanceFactory())
    url = reverse("admin:settlement_ledger_verify")

    page = client.post(url).content.decode()
    assert "Ledger OK" in page

    # Break an invariant the way a bug would: a campaign total that disagrees with its pledges.
    Campaign.objects.filter(pk=held_pledge.campaign_id).update(pledged_amount=1)
    page = client.post(url).content.decode()
    assert "invariant" in page
    assert str(held_pledge.campaign_id) in page


@pytest.mark.django_db
def test_a_reviewer_cannot_run_money_operations(client):
    client.force_login(ReviewerFactory())

    assert "You do not have permission" in client.post(reverse("admin:settlement_ledger_verify")).content.decode()
    assert client.get(reverse("admin:escrow_ledgertransaction_changelist")).status_code == 403
    assert client.get(reverse("admin:settlement_stucksettlement_changelist")).status_code == 403


@pytest.mark.django_db
def test_stuck_settlement_is_listed_and_retried(client, held_pledge, celery_eager, django_capture_on_commit_callbacks):
    client.force_login(FinanceFactory())
    campaign = held_pledge.campaign
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    campaigns_close_due(enqueue_settlement=False)  # as if the worker died before settling
    url = reverse("admin:settlement_stucksettlement_changelist")

    assert campaign.title in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        admin_action(client, url, "retry", [campaign.pk])

    campaign.refresh_from_db()
    held_pledge.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED  # $42 of a $1,000 all-or-nothing goal
    assert held_pledge.status == PledgeStatus.REFUNDED
    assert campaign.title not in client.get(url).content.decode()
    assert ledger_verify() == []


@pytest.mark.django_db
def test_unconfirmed_refund_is_listed_and_sent_again(client, held_pledge):
    client.force_login(FinanceFactory())
    # The ledger records a refund whose gateway call never happened (process died in between).
    from pledges.services import _pledge_return_to_backer

    _pledge_return_to_backer(pledge=held_pledge, to_status=PledgeStatus.CANCELLED, actor=None, reason="test")
    url = reverse("admin:settlement_unconfirmedrefund_changelist")
    assert f">{held_pledge.pk}<" in client.get(url).content.decode()

    admin_action(client, url, "retry", [held_pledge.pk])

    assert GatewayOperation.objects.filter(
        idempotency_key=f"refund:pledge:{held_pledge.pk}", status="succeeded"
    ).exists()
    assert f">{held_pledge.pk}<" not in client.get(url).content.decode()


@pytest.mark.django_db
def test_audit_log_is_viewable_and_read_only(client, held_pledge):
    client.force_login(FinanceFactory())
    admin_action(
        client, reverse("admin:pledges_pledge_changelist"), "refund", [held_pledge.pk], apply="1", reason="dup"
    )
    url = reverse("admin:accounts_auditevent_changelist")

    page = client.get(url).content.decode()

    assert "pledge_refund" in page
    assert client.get(reverse("admin:accounts_auditevent_add")).status_code == 403

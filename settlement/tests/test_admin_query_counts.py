"""Every admin list page runs the same number of SQL queries with 10 rows as with 10,000."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import StaffFactory, UserFactory
from escrow.models import GatewayOperation, LedgerAccount, LedgerEntry, LedgerTransaction
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus, Category

CHANGELISTS = [
    "admin:projects_campaign_changelist",
    "admin:projects_campaignreviewqueue_changelist",
    "admin:projects_category_changelist",
    "admin:pledges_pledge_changelist",
    "admin:escrow_ledgeraccount_changelist",
    "admin:escrow_ledgertransaction_changelist",
    "admin:escrow_ledgerentry_changelist",
    "admin:escrow_gatewayoperation_changelist",
    "admin:settlement_stucksettlement_changelist",
    "admin:settlement_unconfirmedrefund_changelist",
    "admin:accounts_auditevent_changelist",
    "admin:accounts_user_changelist",
]


def add_rows(n: int, start: int) -> None:
    """Add ``n`` rows to every table an admin list shows, in bulk."""
    initiator = UserFactory()
    backers = [UserFactory() for _ in range(3)]
    category = Category.objects.create(name=f"Cat {start}", slug=f"cat-{start}")
    statuses = [CampaignStatus.LIVE, CampaignStatus.IN_REVIEW, CampaignStatus.CLOSING, CampaignStatus.CANCELLED]
    now = timezone.now()
    campaigns = Campaign.objects.bulk_create(
        Campaign(
            initiator=initiator,
            title=f"Campaign {start + i}",
            slug=f"campaign-{start + i}",
            summary="s",
            category=category,
            goal=100_000,
            status=statuses[i % len(statuses)],
            submitted_at=now,
            settlement_outcome="refund" if i % 4 in (2, 3) else "",
        )
        for i in range(n)
    )
    charges = GatewayOperation.objects.bulk_create(
        GatewayOperation(
            kind="charge", idempotency_key=f"charge:{start + i}", status="succeeded", amount=500, currency="USD"
        )
        for i in range(n)
    )
    Pledge.objects.bulk_create(
        Pledge(
            backer=backers[i % 3],
            campaign=campaigns[i],
            amount=500,
            currency="USD",
            status=PledgeStatus.CANCELLED if i % 2 else PledgeStatus.HELD,
            idempotency_key=f"k{start + i}",
            request_fingerprint="f",
            payment_reference=charges[i].reference,
        )
        for i in range(n)
    )
    accounts = LedgerAccount.objects.bulk_create(
        LedgerAccount(code=f"acct:{start + i}", kind="escrow", currency="USD") for i in range(n)
    )
    txns = LedgerTransaction.objects.bulk_create(
        LedgerTransaction(kind="hold", idempotency_key=f"t{start + i}", reference=f"r{start + i}") for i in range(n)
    )
    LedgerEntry.objects.bulk_create(
        LedgerEntry(transaction=txns[i], account=accounts[i], amount=sign * 500, currency="USD")
        for i in range(n)
        for sign in (1, -1)
    )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=initiator,
            action="campaign_approve",
            object_type="projects.Campaign",
            object_id=str(i),
            object_repr="c",
        )
        for i in range(n)
    )


def queries_for(client, url_name: str) -> int:
    url = reverse(url_name)
    assert client.get(url).status_code == 200  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.django_db
def test_every_admin_list_uses_a_constant_number_of_queries(client):
    client.force_login(StaffFactory())
    add_rows(10, start=0)
    small = {name: queries_for(client, name) for name in CHANGELISTS}

    add_rows(10_000, start=100)
    large = {name: queries_for(client, name) for name in CHANGELISTS}

    assert large == small
    assert max(large.values()) <= 15

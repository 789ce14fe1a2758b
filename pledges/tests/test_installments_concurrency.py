"""Installments claimed by workers at once: real threads, one PostgreSQL database, SKIP LOCKED."""

from datetime import timedelta
from functools import partial

import pytest
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.tests.concurrency import run_together
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary_installments import INSTALLMENT_CHARGE_KEY_PREFIX
from pledges.installments import installment_charge, installments_claim_due
from pledges.models import InstallmentStatus, PledgeInstallment
from pledges.services import pledge_create
from projects.tests.factories import LiveCampaignFactory
from settlement.installments import installments_run_due
from settlement.verification import ledger_verify

from .factories import new_key

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
    ),
]


def _plans(n: int):
    campaign = LiveCampaignFactory(goal=10_000_000)
    for backer in UserFactory.create_batch(n, password=None):
        pledge_create(
            backer=backer,
            campaign=campaign,
            amount=15_000,
            currency="USD",
            payment_token="tok_visa",
            idempotency_key=new_key(),
            pay_over_time=True,
        )
    # The clock moved a month on: every second installment is due.
    PledgeInstallment.objects.filter(number=2).update(next_attempt_at=timezone.now() - timedelta(minutes=1))
    return campaign


def _installment_charges():
    return GatewayOperation.objects.filter(
        kind=OperationKind.CHARGE, idempotency_key__startswith=INSTALLMENT_CHARGE_KEY_PREFIX
    )


def test_two_workers_claiming_at_once_never_claim_the_same_installment():
    _plans(20)
    claims = run_together([partial(installments_claim_due, limit=15), partial(installments_claim_due, limit=15)])
    first, second = claims
    assert not set(first) & set(second)  # SKIP LOCKED: each row went to one worker
    assert len(first) + len(second) == 20
    assert PledgeInstallment.objects.filter(number=2, status=InstallmentStatus.CHARGING, attempts=1).count() == 20


def test_two_workers_running_due_work_at_once_charge_each_installment_once():
    _plans(12)
    results = run_together([partial(installments_run_due, limit=100) for _ in range(3)])
    assert sum(r["paid"] for r in results) == 12
    assert _installment_charges().count() == 12
    assert PledgeInstallment.objects.filter(number=2, status=InstallmentStatus.PAID).count() == 12
    assert ledger_verify() == []


def test_a_worker_killed_after_its_claim_is_finished_under_the_same_key():
    _plans(1)
    [claimed] = installments_claim_due()  # the worker dies here, after the claim, before recording
    installment = PledgeInstallment.objects.get(pk=claimed)
    installment_charge(installment_id=claimed)  # ... or after charging: the gateway took the money
    assert installments_run_due()["claimed"] == 0  # not stale yet: nobody charges it again
    PledgeInstallment.objects.filter(pk=claimed).update(claimed_at=timezone.now() - timedelta(minutes=6))

    assert installments_run_due()["paid"] == 1
    installment.refresh_from_db()
    assert installment.status == InstallmentStatus.PAID
    assert installment.attempts == 1
    assert _installment_charges().count() == 1  # the retry found the first charge under its key
    assert ledger_verify() == []

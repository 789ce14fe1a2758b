"""A web process killed between the charge and the hold: the backer paid, nothing is held yet.

The pledge is made through the real ``POST /api/v1/campaigns/{id}/pledges/`` in a child process
that dies (SIGKILL) as soon as the sandbox has charged the card. The sweeper must then hold that
pledge exactly once, and a retry of the same request must answer with it, never charging twice.
"""

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, current_database_url
from escrow.models import GatewayOperation, OperationKind
from pledges.models import Pledge, PledgeStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import pledges_reconcile
from settlement.verification import ledger_verify

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a second process shares only a PostgreSQL database"),
]

BASE_DIR = Path(__file__).resolve().parents[2]
CHILD = """
import django, json, sys
django.setup()
from django.test import Client
body = json.loads(sys.argv[1])
Client().post(body.pop("path"), json.dumps(body), content_type="application/json",
              HTTP_AUTHORIZATION="Token " + sys.argv[2], HTTP_IDEMPOTENCY_KEY="dies-after-charge")
"""


def _pledge_in_a_process_that_dies_after_the_charge(*, campaign, reward, token: str) -> int:
    body = {"path": f"/api/v1/campaigns/{campaign.pk}/pledges/", "amount": 5_000, "currency": "USD"}
    body |= {"reward": reward.pk, "payment_token": "tok_visa"}
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crowdfund_site.settings",
        "DATABASE_URL": current_database_url(),
        "PAYMENT_GATEWAY": "pledges.tests.dying_gateway.SandboxGatewayDyingAfterCharge",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "false",
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(body), token], cwd=BASE_DIR, env=env, capture_output=True, timeout=120
    )
    return child.returncode


def test_a_process_killed_between_charge_and_hold_is_finished_once_by_the_sweeper():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=5_000, quantity_limit=1)
    backer = UserFactory()
    token = Token.objects.create(user=backer).key

    assert _pledge_in_a_process_that_dies_after_the_charge(campaign=campaign, reward=reward, token=token) == (
        -signal.SIGKILL
    )
    pledge = Pledge.objects.get()
    assert pledge.status == PledgeStatus.PENDING  # charged, not held: the process died in between
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1

    assert pledges_reconcile(now=timezone.now() + timedelta(hours=1)) == {"pending_reconciled": 1, "refunds_sent": 0}
    assert pledges_reconcile(now=timezone.now() + timedelta(hours=1)) == {"pending_reconciled": 0, "refunds_sent": 0}

    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.HELD
    campaign.refresh_from_db()
    reward.refresh_from_db()
    assert (campaign.pledged_amount, campaign.backer_count, reward.claimed_count) == (5_000, 1, 1)
    # The backer's client, retrying the request it never got an answer to, gets the held pledge.
    body = {"amount": 5_000, "currency": "USD", "reward": reward.pk, "payment_token": "tok_visa"}
    retried = api_client(backer).post(
        f"/api/v1/campaigns/{campaign.pk}/pledges/", body, format="json", HTTP_IDEMPOTENCY_KEY="dies-after-charge"
    )
    assert (retried.status_code, retried.json()["id"], retried.json()["status"]) == (201, pledge.pk, "held")
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1
    assert ledger_verify() == []

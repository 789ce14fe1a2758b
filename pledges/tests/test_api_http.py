"""Pledges over HTTP to gunicorn on PostgreSQL, under real concurrency.

The server runs against the test database in its own processes; every client is a thread with
its own connection, and all are released together behind a barrier.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection
from rest_framework.authtoken.models import Token

from crowdfund_site.api.models import IdempotencyRecord
from crowdfund_site.api.testing import current_database_url, gunicorn_serving, http_post_json
from escrow.models import GatewayOperation, OperationKind
from pledges.models import Pledge, PledgeStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.verification import ledger_verify

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises writers, and its test database lives in this process's memory",
    ),
]

SERVER_ENV = {
    "API_THROTTLE_USER": "1000000/min",
    "API_THROTTLE_IP": "1000000/min",
    "CELERY_TASK_ALWAYS_EAGER": "1",
    "CONN_MAX_AGE": "0",
}


def _backer_tokens(n: int) -> list[str]:
    """Create ``n`` backers with API tokens in a few statements; return the tokens."""
    User = get_user_model()
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"http-backer-{i}", email=f"http{i}@example.com", password=password) for i in range(n)]
    )
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    return [t.key for t in tokens]


def _post_all_at_once(url: str, requests: list[tuple[dict, dict]]) -> list[tuple[int, bytes]]:
    barrier = threading.Barrier(len(requests))

    def send(request: tuple[dict, dict]) -> tuple[int, bytes]:
        body, headers = request
        barrier.wait(timeout=60)
        return http_post_json(url, body, headers=headers)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


def test_200_concurrent_pledges_to_a_tier_of_10_sell_exactly_10():
    campaign = LiveCampaignFactory(goal=10_000_000)
    reward = RewardTierFactory(campaign=campaign, minimum_amount=5_000, quantity_limit=10)
    tokens = _backer_tokens(200)
    body = {"amount": 5_000, "currency": "USD", "reward": reward.pk, "payment_token": "tok_visa"}
    requests = [(body, {"Authorization": f"Token {t}", "Idempotency-Key": f"pledge-{i}"}) for i, t in enumerate(tokens)]

    with gunicorn_serving(env={**SERVER_ENV, "DATABASE_URL": current_database_url()}, workers=2, threads=8) as url:
        responses = _post_all_at_once(f"{url}/api/v1/campaigns/{campaign.pk}/pledges/", requests)

    statuses = [status for status, _ in responses]
    assert statuses.count(201) == 10, sorted(set(statuses))
    assert statuses.count(409) == 190, sorted(set(statuses))
    assert {json.loads(raw)["code"] for status, raw in responses if status == 409} == {"sold_out"}
    reward.refresh_from_db()
    assert reward.claimed_count == 10
    assert Pledge.objects.filter(status=PledgeStatus.HELD).count() == 10
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 50_000
    assert campaign.backer_count == 10
    assert ledger_verify() == []


def test_20_concurrent_replays_of_one_pledge_make_one_pledge_and_20_identical_responses():
    campaign = LiveCampaignFactory()
    [token] = _backer_tokens(1)
    body = {"amount": 4_200, "currency": "USD", "reward": None, "payment_token": "tok_visa"}
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": "one-pledge-please"}

    with gunicorn_serving(env={**SERVER_ENV, "DATABASE_URL": current_database_url()}, workers=2, threads=8) as url:
        responses = _post_all_at_once(f"{url}/api/v1/campaigns/{campaign.pk}/pledges/", [(body, headers)] * 20)

    assert {status for status, _ in responses} == {201}
    assert len({raw for _, raw in responses}) == 1, "every replay must get the first response, byte for byte"
    assert Pledge.objects.count() == 1
    assert not IdempotencyRecord.objects.exists()  # the pledge's own key answers the retries
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 4_200
    assert ledger_verify() == []

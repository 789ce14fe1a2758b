"""A matching round end to end: real Celery worker and beat processes, Redis, PostgreSQL.

Pledges come in, beat ends the round and publishes it, staff exclude a contribution in the
challenge window and pay the round, then beat closes both campaigns and the worker settles
their matched money with them: released with the one that succeeded, back to the pool from
the one that failed.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from escrow.vocabulary import PLATFORM_REVENUE, initiator_payout_code
from matching.models import Allocation, AllocationOutcome, Round, RoundStatus
from matching.selectors import pool_balance
from matching.services import round_create, round_exclude_contribution, round_pay
from matching.tests.factories import funded_pool
from matching.tests.test_services import balance
from pledges.services import pledge_create
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.checks import escrow_balance
from settlement.tests.test_worker import _wait_for, celery_processes  # noqa: F401 - the fixture
from settlement.verification import ledger_verify

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"),
        reason="needs DATABASE_URL on PostgreSQL and CELERY_BROKER_URL on Redis, "
        "so that worker processes share the test database and the queue",
    ),
]


def _pledge(campaign, amount: int, backer=None):
    backer = backer or UserFactory(password=None)
    return pledge_create(
        backer=backer,
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key=f"pledge-{campaign.pk}-{backer.pk}",
    )


def test_a_round_from_pledges_to_settled_matched_money_with_a_real_worker(celery_processes):  # noqa: F811
    succeeds = LiveCampaignFactory(goal=10_000, platform_fee_bps=500)
    fails = LiveCampaignFactory(goal=1_000_000)
    pool = funded_pool(amount=100_000, campaigns=[succeeds, fails], per_campaign_cap=100_000)
    now = timezone.now()
    matching_round = round_create(
        pool=pool, actor=pool.sponsor, starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(seconds=3)
    )
    for _ in range(4):
        _pledge(succeeds, 2_500)
    fraud = [_pledge(fails, 5_000) for _ in range(3)]

    celery_processes("worker")
    celery_processes("beat", END_DUE_MATCHING_ROUNDS_EVERY_SECONDS="1", CLOSE_DUE_CAMPAIGNS_EVERY_SECONDS="1")
    _wait_for(
        lambda: Round.objects.filter(pk=matching_round.pk, status=RoundStatus.CHALLENGE).exists(),
        what="beat to end the round and publish it",
        processes=celery_processes.processes,
    )
    # Staff find one of the failing campaign's backers fake: it has two left.
    staff = StaffFactory()
    round_exclude_contribution(matching_round=matching_round, pledge=fraud[0], actor=staff, reason="one device")
    Round.objects.filter(pk=matching_round.pk).update(challenge_ends_at=timezone.now())
    round_pay(matching_round=matching_round, actor=staff)
    assert dict(Allocation.objects.values_list("campaign_id", "amount")) == {succeeds.pk: 75_000, fails.pk: 25_000}
    assert escrow_balance(fails) == 15_000 + 25_000

    Campaign.objects.filter(pk__in=[succeeds.pk, fails.pk]).update(deadline=timezone.now() - timedelta(seconds=1))
    _wait_for(
        lambda: Campaign.objects.filter(pk__in=[succeeds.pk, fails.pk], settled_at__isnull=False).count() == 2,
        what="beat and the worker to close and settle both campaigns",
        processes=celery_processes.processes,
    )
    succeeds.refresh_from_db()
    fails.refresh_from_db()
    assert (succeeds.status, fails.status) == (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED)
    outcomes = dict(Allocation.objects.values_list("campaign_id", "outcome"))
    assert outcomes == {succeeds.pk: AllocationOutcome.RELEASED, fails.pk: AllocationOutcome.RETURNED}
    assert escrow_balance(succeeds) == escrow_balance(fails) == 0
    # The platform fee is taken on the matched money as on the pledges: 5 % of 100.00 pledged
    # and 750.00 matched; the initiator is paid the rest of both.
    assert balance(PLATFORM_REVENUE) == (10_000 + 75_000) * 5 // 100 == 4_250
    assert balance(initiator_payout_code(succeeds.initiator_id)) == 85_000 - 4_250
    assert balance(initiator_payout_code(fails.initiator_id)) == 0
    assert pool_balance(pool=pool) == 25_000
    assert ledger_verify() == []

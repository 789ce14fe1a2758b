"""Deadlines end to end: real Celery worker and beat processes, a real Redis broker, PostgreSQL.

The processes are started with ``python -m celery`` against the test database, so they see the
rows these tests commit (``transaction=True``), and read a queue of their own. Every wait is
bounded; every process is stopped (SIGTERM, then SIGKILL) before the test database is flushed.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.celery import app
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind, OperationStatus, TransactionKind
from escrow.vocabulary import campaign_escrow_code
from pledges.models import Pledge, PledgeStatus, PledgeStatusChange
from pledges.services import pledge_create
from pledges.testing import held_pledges_create_bulk
from projects.models import Campaign, CampaignStatus
from projects.tests.factories import LiveCampaignFactory
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

WAIT_SECONDS = 60


class CeleryProcess:
    """One ``celery`` command running beside the test, its output kept in a log file."""

    def __init__(self, *, name: str, args: list[str], env: dict[str, str], log_dir) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "crowdfund_site", *args],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- {self.name} (exit {self.popen.poll()}) ---\n" + "\n".join(text[-lines:])

    def kill(self) -> None:
        """Kill at once, as the OOM killer or a lost machine would: no cleanup, no ack."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 15) -> None:
        """Ask for a warm shutdown; kill if it takes longer than ``grace`` seconds."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()


def _test_database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"], safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    return f"postgres://{user}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _drop_queue(queue: str) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)


@pytest.fixture
def celery_processes(tmp_path):
    """Return a function starting ``celery worker`` / ``celery beat`` on the test database.

    They use a queue of their own (``start.send`` sends to it, as beat does), so that test
    runs sharing the Redis database never take each other's tasks.
    """
    started: list[CeleryProcess] = []
    queue = f"test-worker-{uuid.uuid4().hex[:12]}"

    def start(kind: str, **env_overrides: str) -> CeleryProcess:
        env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "SECRET_KEY": os.environ.get("SECRET_KEY", "insecure-test-only-key"),
            "DEBUG": "0",
            "PAYMENT_GATEWAY": "escrow.gateway.SandboxGateway",
            **env_overrides,
        }
        name = f"{kind}-{len(started) + 1}"
        if kind == "worker":
            args = ["worker", "--pool=solo", "--loglevel=INFO", f"--hostname={name}-{os.getpid()}@%h"]
            args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        else:
            args = ["beat", "--loglevel=INFO", f"--schedule={tmp_path / 'celerybeat-schedule'}"]
        process = CeleryProcess(name=name, args=args, env=env, log_dir=tmp_path)
        started.append(process)
        return process

    start.processes = started
    start.send = lambda task_name: app.send_task(task_name, queue=queue)
    try:
        yield start
    finally:
        for process in started:
            process.stop()
        _drop_queue(queue)


def _wait_for(condition: Callable[[], bool], *, what: str, processes: list[CeleryProcess], interval=0.1) -> None:
    give_up = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > give_up:
            logs = "\n".join(p.log_tail() for p in processes)
            pytest.fail(f"Gave up after {WAIT_SECONDS} s waiting for {what}.\n{logs}")
        time.sleep(interval)


def _pledge(campaign, amount: int) -> Pledge:
    return pledge_create(
        backer=UserFactory(password=None),
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key=f"pledge-{amount}",
    )


def _past_deadline(*campaigns: Campaign) -> None:
    Campaign.objects.filter(pk__in=[c.pk for c in campaigns]).update(deadline=timezone.now() - timedelta(seconds=1))


def test_beat_and_a_worker_close_and_settle_campaigns_past_their_deadline(celery_processes):
    funded = LiveCampaignFactory(goal=5_000, platform_fee_bps=500)
    funded_pledges = [_pledge(funded, 3_000), _pledge(funded, 4_000)]
    missed = LiveCampaignFactory(goal=1_000_000)
    missed_pledge = _pledge(missed, 2_500)
    not_due = LiveCampaignFactory(goal=1_000)
    _pledge(not_due, 1_500)
    _past_deadline(funded, missed)

    celery_processes("worker")
    celery_processes("beat", CLOSE_DUE_CAMPAIGNS_EVERY_SECONDS="1")
    _wait_for(
        lambda: Campaign.objects.filter(pk__in=[funded.pk, missed.pk], settled_at__isnull=False).count() == 2,
        what="beat's close_due_campaigns to close and settle both campaigns",
        processes=celery_processes.processes,
    )

    funded.refresh_from_db()
    assert funded.status == CampaignStatus.SUCCEEDED
    assert all(p.status == PledgeStatus.RELEASED for p in Pledge.objects.filter(campaign=funded))
    payout = GatewayOperation.objects.get(kind=OperationKind.PAYOUT)
    assert payout.amount == 7_000 - 350  # everything raised, less the 5 % fee
    assert payout.status == OperationStatus.SUCCEEDED
    missed.refresh_from_db()
    missed_pledge.refresh_from_db()
    assert missed.status == CampaignStatus.FAILED
    assert missed_pledge.status == PledgeStatus.REFUNDED
    charge = GatewayOperation.objects.get(idempotency_key=f"charge:pledge:{missed_pledge.pk}")
    assert charge.refunded_amount == charge.amount == 2_500
    for pledge in funded_pledges:
        assert GatewayOperation.objects.get(idempotency_key=f"charge:pledge:{pledge.pk}").refunded_amount == 0
    not_due.refresh_from_db()
    assert not_due.status == CampaignStatus.LIVE
    assert ledger_verify() == []


PLEDGES = 3_000
BATCH = 100


@pytest.mark.parametrize(
    ("goal", "settled_status", "campaign_status", "posting_kind"),
    [
        pytest.param(10**12, PledgeStatus.REFUNDED, CampaignStatus.FAILED, TransactionKind.REFUND, id="refund"),
        pytest.param(1, PledgeStatus.RELEASED, CampaignStatus.SUCCEEDED, TransactionKind.RELEASE, id="release"),
    ],
)
def test_a_worker_killed_mid_settlement_is_restarted_and_settles_every_pledge_once(
    celery_processes, goal, settled_status, campaign_status, posting_kind
):
    campaign = LiveCampaignFactory(goal=goal)
    raised = held_pledges_create_bulk(campaign=campaign, count=PLEDGES)
    assert ledger_verify() == []
    _past_deadline(campaign)
    pledges = Pledge.objects.filter(campaign=campaign)
    worker_env = {"SETTLEMENT_BATCH_SIZE": str(BATCH), "SETTLEMENT_STUCK_AFTER_SECONDS": "0"}

    worker = celery_processes("worker", **worker_env)
    celery_processes.send("settlement.tasks.close_due_campaigns")  # what beat sends every minute
    _wait_for(
        lambda: pledges.filter(status=settled_status).count() >= PLEDGES // 4,
        what="settlement to get a quarter of the way",
        processes=[worker],
        interval=0.02,
    )
    worker.kill()
    settled_before_crash = pledges.filter(status=settled_status).count()
    assert settled_before_crash < PLEDGES, "settlement finished before the worker could be killed"

    restarted = celery_processes("worker", **worker_env)
    # The killed worker's task is redelivered only after the broker's visibility timeout; the
    # sweeper (beat runs it every few minutes) finds the stalled campaign and re-enqueues it.
    celery_processes.send("settlement.tasks.sweep_settlements")
    _wait_for(
        lambda: Campaign.objects.filter(pk=campaign.pk, settled_at__isnull=False).exists(),
        what="the restarted worker to finish settlement",
        processes=[worker, restarted],
    )

    campaign.refresh_from_db()
    assert campaign.status == campaign_status
    assert pledges.filter(status=settled_status).count() == PLEDGES
    # Exactly once: one posting and one recorded transition per pledge, none twice.
    postings = LedgerTransaction.objects.filter(kind=posting_kind, reference__startswith="pledge:")
    assert postings.count() == PLEDGES
    assert not postings.values("reference").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert PledgeStatusChange.objects.filter(pledge__campaign=campaign, to_status=settled_status).count() == PLEDGES
    refunds = GatewayOperation.objects.filter(kind=OperationKind.REFUND, status=OperationStatus.SUCCEEDED)
    charges = GatewayOperation.objects.filter(kind=OperationKind.CHARGE)
    if settled_status == PledgeStatus.REFUNDED:
        assert refunds.count() == PLEDGES
        assert all(c.refunded_amount == c.amount for c in charges)
    else:
        assert refunds.count() == 0
        fee = raised * campaign.platform_fee_bps // 10_000
        assert GatewayOperation.objects.get(kind=OperationKind.PAYOUT).amount == raised - fee
    assert account_balances(codes=[campaign_escrow_code(campaign.pk)]) == {
        (campaign_escrow_code(campaign.pk), campaign.currency): 0
    }
    assert ledger_verify() == []

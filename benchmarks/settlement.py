"""Settlement benchmark: one worker settles one very large campaign; how fast, in how much memory.

Budget: >= 5,000 pledges/s (220,000 pledges in <= 45 s) with the worker's peak RSS <= 300 MB,
on 2 cores, for both outcomes (refund every backer, release to the initiator), and for the refund
of the remainder of a campaign with milestones (outcome ``remainder``: a 30 % / 70 % plan, the
first tranche released at success, then the initiator abandons and the 70 % left is refunded pro
rata to every pledge; timed from the abandonment, which fixes the split, until the last batch);
and sealing 1,000,000 ledger transactions into checkpoints at >= 50,000 transactions/s
(``bench_sealing``).

Each run uses its own PostgreSQL database (``crowdfund_bench`` by default, created and migrated
here) and a Redis queue of its own (on database 11 by default). It seeds N held pledges on one campaign with
``pledges.testing.held_pledges_create_bulk``, closes the campaign, starts one real
``celery worker --pool=solo`` process, and times from enqueueing ``settle_campaign`` (the task
beat's ``close_due_campaigns`` enqueues) until the campaign is settled: every batch goes
through the broker as in production. Then it reads the worker's peak RSS (VmHWM) and runs
``ledger_verify()``. The same is done at N/10 to show how time scales. Seeding is not timed.

    .venv/bin/python benchmarks/settlement.py [--pledges 220000] [--outcomes refund,release,remainder]
                                              [--repeat 1] [--no-scaling] [--batch-size N]
                                              [--seal-transactions 1000000]
                                              [--database-url URL] [--broker-url URL] [--log-dir DIR]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import BASE_DIR, setup_django_on_postgres

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crowdfund_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/11"
CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "crowdfund_site", "worker", "--pool=solo", "--loglevel=INFO"]
CELERY_WORKER += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
BUDGET_PLEDGES_PER_SECOND = 5_000
BUDGET_PEAK_RSS_MB = 300
BUDGET_SEALED_PER_SECOND = 50_000
REMAINDER = "remainder"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pledges", type=int, default=220_000, help="pledges on the campaign (default 220,000)")
    parser.add_argument(
        "--outcomes", default="refund,release,remainder", help="comma separated: refund, release, remainder"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per outcome and size; medians are reported")
    parser.add_argument("--no-scaling", action="store_true", help="skip the run at N/10")
    parser.add_argument("--batch-size", type=int, default=None, help="SETTLEMENT_BATCH_SIZE for the worker")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL), help="PostgreSQL only"
    )
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL))
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the worker logs here")
    parser.add_argument(
        "--seal-transactions", type=int, default=1_000_000, help="ledger transactions to seal (0: skip sealing)"
    )
    return parser.parse_args()


def configure_django(args: argparse.Namespace) -> None:
    """Point this process at the benchmark database and broker, creating the database if needed."""
    os.environ["CELERY_BROKER_URL"] = args.broker_url
    # A queue of its own: no one else's worker on the same Redis database can take its tasks.
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"bench-settlement-{os.getpid()}"
    setup_django_on_postgres(args.database_url, benchmark="settlement")


class Worker:
    """One ``celery worker --pool=solo`` process on the benchmark database."""

    def __init__(self, *, args: argparse.Namespace, log_dir: Path, name: str) -> None:
        # The outcome e-mails queued after settlement are not what this measures: drop them.
        env = {**os.environ, "LOG_LEVEL": "WARNING", "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
        if args.batch_size:
            env["SETTLEMENT_BATCH_SIZE"] = str(args.batch_size)
            env["REMAINDER_REFUND_BATCH_SIZE"] = str(args.batch_size)
        # --log-dir may name a folder that does not exist yet, and every run (sealing too) starts here.
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [*CELERY_WORKER, f"--hostname={name}@%h"],
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_until_ready()

    def wait_until_ready(self, timeout: float = 60) -> None:
        give_up = time.monotonic() + timeout
        while " ready." not in self.log_path.read_text(errors="replace"):
            if self.popen.poll() is not None or time.monotonic() > give_up:
                sys.exit(f"The worker did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)

    def peak_rss_mb(self) -> float:
        """Return the process's peak resident set size (VmHWM) in MB."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/<pid>/status")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.send_signal(signal.SIGKILL)
                self.popen.wait(timeout=10)


def purge_queue(*, delete: bool = False) -> None:
    """Empty this run's own queue (or delete it, at the end)."""
    from django.conf import settings

    from crowdfund_site.celery import app

    with app.connection_for_write() as conn:
        channel, queue = conn.default_channel, settings.CELERY_TASK_DEFAULT_QUEUE
        channel.queue_delete(queue) if delete else channel.queue_purge(queue)


def seed(*, pledges: int, outcome: str):
    """Empty the database and return a closing campaign with ``pledges`` held pledges."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from pledges.testing import held_pledges_create_bulk
    from projects.models import Campaign, CampaignStatus, Category, SettlementOutcome
    from settlement.services import campaigns_close_due

    call_command("flush", interactive=False, verbosity=0)
    initiator = get_user_model().objects.create(username="initiator", email="initiator@example.com")
    category = Category.objects.create(name="Benchmarks", slug="benchmarks")
    now = timezone.now()
    campaign = Campaign.objects.create(
        initiator=initiator,
        title="Benchmark campaign",
        slug="benchmark-campaign",
        summary="Very many backers.",
        category=category,
        goal=1,
        status=CampaignStatus.LIVE,
        launched_at=now - timedelta(days=30),
        deadline=now + timedelta(days=1),
        platform_fee_bps=500,
    )
    if outcome == REMAINDER:
        from projects.milestones.models import Milestone

        for position, share in enumerate([3_000, 7_000], start=1):
            Milestone.objects.create(
                campaign=campaign,
                position=position,
                title=f"Step {position}",
                proof_required="Photos",
                target_date=timezone.localdate() + timedelta(days=30 * position),
                share_bps=share,
            )
    total = held_pledges_create_bulk(campaign=campaign, count=pledges, chunk_size=10_000)
    # Release when the goal is reached, refund when it is missed.
    goal = 1 if outcome != SettlementOutcome.REFUND else total + 1
    Campaign.objects.filter(pk=campaign.pk).update(goal=goal, deadline=timezone.now() - timedelta(seconds=1))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # settle against fresh statistics, as autovacuum would give
    assert campaigns_close_due(enqueue_settlement=False) == [campaign.pk]
    campaign.refresh_from_db()
    assert campaign.settlement_outcome == (SettlementOutcome.RELEASE if outcome == REMAINDER else outcome)
    if outcome == REMAINDER:
        # Success (not timed here: that is the release line), then fresh statistics again.
        from settlement.services import settlement_run

        settlement_run(campaign_id=campaign.pk)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    campaign.refresh_from_db()
    return campaign


def run_once(*, args: argparse.Namespace, pledges: int, outcome: str, log_dir: Path, run: int) -> dict:
    from pledges.models import Pledge, PledgeStatus
    from projects.models import Campaign
    from settlement.tasks import settle_campaign
    from settlement.verification import ledger_verify

    started = time.monotonic()
    campaign = seed(pledges=pledges, outcome=outcome)
    seed_seconds = time.monotonic() - started
    purge_queue()
    worker = Worker(args=args, log_dir=log_dir, name=f"bench-{outcome}-{pledges}-{run}")
    try:
        enqueued = time.time()
        if outcome == REMAINDER:
            from settlement.models import RemainderCause, RemainderRefund
            from settlement.remainder import remainder_refund_start

            remainder_refund_start(campaign=campaign, actor=campaign.initiator, cause=RemainderCause.ABANDONED)
            done = RemainderRefund.objects.filter(campaign_id=campaign.pk).values_list("finished_at", flat=True)
        else:
            settle_campaign.delay(campaign.pk)
            done = Campaign.objects.filter(pk=campaign.pk).values_list("settled_at", flat=True)
        give_up = time.monotonic() + max(300, pledges / 500)
        while (settled_at := done.get()) is None:
            if worker.popen.poll() is not None or time.monotonic() > give_up:
                sys.exit(f"Settlement did not finish:\n{worker.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        wall = settled_at.timestamp() - enqueued
        peak_rss = worker.peak_rss_mb()
    finally:
        worker.stop()
    started = time.monotonic()
    problems = ledger_verify()
    verify_seconds = time.monotonic() - started
    to_status = PledgeStatus.REFUNDED if outcome == "refund" else PledgeStatus.RELEASED
    settled = Pledge.objects.filter(campaign_id=campaign.pk, status=to_status).count()
    if settled != pledges:
        problems.append(f"only {settled} of {pledges} pledges {to_status}")
    if outcome == REMAINDER:
        from escrow.models import LedgerTransaction

        parts = LedgerTransaction.objects.filter(reference__startswith="remainder:pledge:").count()
        if parts != pledges:
            problems.append(f"only {parts} of {pledges} pledges got their part of the remainder")
    return {
        "outcome": outcome,
        "pledges": pledges,
        "wall": wall,
        "rate": pledges / wall,
        "rss": peak_rss,
        "seed": seed_seconds,
        "verify": verify_seconds,
        "problems": problems,
    }


def main() -> None:
    args = parse_args()
    configure_django(args)
    from django.conf import settings

    sealing_within = not args.seal_transactions or bench_sealing(args=args, transactions=args.seal_transactions)
    outcomes = [o.strip() for o in args.outcomes.split(",") if o.strip()]
    sizes = [args.pledges] + ([] if args.no_scaling else [max(args.pledges // 10, 1)])
    batch = args.batch_size or settings.SETTLEMENT_BATCH_SIZE
    print(
        f"Settlement benchmark: {sizes} pledges, outcomes {outcomes}, batch size {batch}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-settlement-") as temporary:
        log_dir = args.log_dir or Path(temporary)
        for outcome in outcomes:
            for pledges in sizes:
                runs = []
                for run in range(args.repeat):
                    result = run_once(args=args, pledges=pledges, outcome=outcome, log_dir=log_dir, run=run)
                    runs.append(result)
                    print(
                        f"  {outcome:8} {pledges:>9,} pledges: {result['wall']:6.1f} s, {result['rate']:7,.0f} "
                        f"pledges/s, peak RSS {result['rss']:5.0f} MB, verify "
                        f"{'OK' if not result['problems'] else result['problems']} ({result['verify']:.1f} s), "
                        f"seeded in {result['seed']:.0f} s",
                        flush=True,
                    )
                results.append(
                    {
                        "outcome": outcome,
                        "pledges": pledges,
                        "wall": statistics.median(r["wall"] for r in runs),
                        "rate": statistics.median(r["rate"] for r in runs),
                        "rss": statistics.median(r["rss"] for r in runs),
                        "ok": all(not r["problems"] for r in runs),
                        "runs": len(runs),
                    }
                )
    purge_queue(delete=True)
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f} (other processes share the 2 cores)")
    print("| outcome | pledges | wall time (s) | pledges/s | worker peak RSS (MB) | verify_ledger | runs |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for r in results:
        print(
            f"| {r['outcome']} | {r['pledges']:,} | {r['wall']:.1f} | {r['rate']:,.0f} | {r['rss']:.0f} | "
            f"{'OK' if r['ok'] else 'FAILED'} | {r['runs']} |"
        )
    full = [r for r in results if r["pledges"] == args.pledges]
    within = all(r["ok"] and r["rate"] >= BUDGET_PLEDGES_PER_SECOND and r["rss"] <= BUDGET_PEAK_RSS_MB for r in full)
    print(
        f"\nBudget (>= {BUDGET_PLEDGES_PER_SECOND:,} pledges/s, peak RSS <= {BUDGET_PEAK_RSS_MB} MB, "
        f"ledger verified): {'met' if within else 'NOT met'}"
    )
    sys.exit(0 if within and sealing_within else 1)


def seed_ledger(*, transactions: int, chunk_size: int = 20_000) -> None:
    """Empty the database and post ``transactions`` holds (two entries each) from 1,000 backers to one escrow."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from escrow.ledger import ledger_accounts_get_or_create, ledger_post_many
    from escrow.vocabulary import hold_account_specs, hold_posting

    call_command("flush", interactive=False, verbosity=0)
    backers, campaign_id = 1_000, 1
    specs = {spec for b in range(1, backers + 1) for spec in hold_account_specs(backer_id=b, campaign_id=campaign_id)}
    accounts = ledger_accounts_get_or_create(specs=sorted(specs), currency="USD")
    for start in range(1, transactions + 1, chunk_size):
        with transaction.atomic():
            ledger_post_many(
                postings=[
                    hold_posting(
                        pledge_id=n,
                        backer_id=n % backers + 1,
                        campaign_id=campaign_id,
                        amount=1_000 + n % 5_000,
                        currency="USD",
                        accounts=accounts,
                    )
                    for n in range(start, min(start + chunk_size, transactions + 1))
                ]
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _ledger_seeded_already(transactions: int) -> bool:
    """Return True if the database holds exactly what ``seed_ledger`` makes (a previous run's): reuse it."""
    from escrow.models import LedgerTransaction
    from pledges.models import Pledge

    return LedgerTransaction.objects.count() == transactions and not Pledge.objects.exists()


def _sealing_cpu_seconds(*, batch_size: int) -> float:
    """Seal the ledger again in this process; return the CPU time it took here and in its database backend.

    On a machine shared with other work, wall time includes waiting for a core; CPU time does not.
    """
    from django.db import connection

    from escrow.checkpoints import ledger_seal
    from escrow.models import LedgerCheckpoint

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {LedgerCheckpoint._meta.db_table}")
        cursor.execute("SELECT pg_backend_pid()")
        backend = Path(f"/proc/{cursor.fetchone()[0]}/stat")

    def backend_cpu() -> float:
        fields = backend.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    before = time.process_time(), backend_cpu()
    ledger_seal(batch_size=batch_size)
    return time.process_time() - before[0] + backend_cpu() - before[1]


def bench_sealing(*, args: argparse.Namespace, transactions: int) -> bool:
    """Seal ``transactions`` fresh ledger transactions with the beat task on one worker; print the line.

    Timed from enqueueing ``seal_ledger`` until the last checkpoint is written; the worker reads
    one checkpoint's batch at a time, so its peak RSS shows the memory stays bounded. Then every
    checkpoint is recomputed (``checkpoints_verify``) and the time it takes is printed too.
    """
    from django.conf import settings
    from django.db import connection

    from escrow.checkpoints import checkpoint_latest, checkpoints_verify
    from escrow.models import LedgerCheckpoint
    from settlement.tasks import seal_ledger

    started = time.monotonic()
    if _ledger_seeded_already(transactions):
        with connection.cursor() as cursor:  # checkpoints are append-only, but TRUNCATE is not a row change
            cursor.execute(f"TRUNCATE {LedgerCheckpoint._meta.db_table}")
    else:
        seed_ledger(transactions=transactions)
    seed_seconds = time.monotonic() - started
    purge_queue()
    batch = settings.LEDGER_CHECKPOINT_BATCH_SIZE
    # One run seals everything: the rate is the worker's, not beat's schedule.
    os.environ["LEDGER_CHECKPOINTS_PER_RUN"] = str(transactions // batch + 1)
    with tempfile.TemporaryDirectory(prefix="bench-sealing-") as temporary:
        worker = Worker(args=args, log_dir=args.log_dir or Path(temporary), name=f"bench-seal-{transactions}")
        try:
            enqueued = time.time()
            seal_ledger.delay()
            give_up = time.monotonic() + max(300, transactions / 2_000)
            while (latest := checkpoint_latest()) is None or latest.sealed_total < transactions:
                if worker.popen.poll() is not None or time.monotonic() > give_up:
                    sys.exit(f"Sealing did not finish:\n{worker.log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.05)
            wall = latest.created_at.timestamp() - enqueued
            peak_rss = worker.peak_rss_mb()
        finally:
            worker.stop()
    started = time.monotonic()
    problems = checkpoints_verify()
    verify_seconds = time.monotonic() - started
    cpu_seconds = _sealing_cpu_seconds(batch_size=batch)
    rate = transactions / wall
    within = not problems and rate >= BUDGET_SEALED_PER_SECOND
    print(
        f"  sealing {transactions:>9,} transactions into {latest.sequence} checkpoints of {batch:,}: {wall:6.1f} s, "
        f"{rate:9,.0f} transactions/s, worker peak RSS {peak_rss:5.0f} MB, checkpoints verified "
        f"{problems or 'OK'} in {verify_seconds:.1f} s, seeded in {seed_seconds:.0f} s",
        flush=True,
    )
    print(
        f"  the same sealing in this process: {cpu_seconds:.1f} CPU seconds (this process and its PostgreSQL "
        f"backend), {transactions / cpu_seconds:,.0f} transactions per CPU second",
        flush=True,
    )
    print(
        f"  Budget (>= {BUDGET_SEALED_PER_SECOND:,} transactions/s sealed, checkpoints verified): "
        f"{'met' if within else 'NOT met'}\n",
        flush=True,
    )
    return within


if __name__ == "__main__":
    main()

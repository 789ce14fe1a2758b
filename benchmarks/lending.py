"""Lending benchmark (PostgreSQL, on demand): payouts to many lenders, a month-end run, schedules.

Budgets (issue 12):
- one repayment paid out to 10,000 lenders in <= 1 s;
- a month-end run of 1,000 loans with 200 lenders each, all due the same day, charged and paid
  out (200,000 payout lines), in <= 20 s with peak RSS <= 300 MB;
- schedules for 10,000 loans in <= 1 s.
``verify_ledger`` runs after each and must find nothing.

    .venv/bin/python benchmarks/lending.py --database-url postgres://postgres@127.0.0.1:5432/bench_lending
        [--lenders 10000] [--loans 1000] [--loan-lenders 200] [--schedules 10000] [--only payout,month,schedules]

Loans are made the platform's way: held pledges (with their charges and holds in the ledger,
``pledges.testing``), the campaign closed and settled (which disburses and creates the loan with
its schedule and due-work rows). Seeding is not timed. The month-end run is ``loans_run_due_work``
(beat's task body) in a child process whose peak RSS is its own, over the charge rows of every
loan's first installment (the reminders before it are marked done, as earlier runs would have).
"""

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import setup_django_on_postgres


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--lenders", type=int, default=10_000)
    parser.add_argument("--loans", type=int, default=1_000)
    parser.add_argument("--loan-lenders", type=int, default=200)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--only", default="payout,month,schedules")
    parser.add_argument(
        "--month-seed-only", action="store_true", help="seed the month-end's loans and stop (copy the database after)"
    )
    parser.add_argument(
        "--month-seeded", action="store_true", help="run the month-end on loans already seeded (a copy of a seed)"
    )
    parser.add_argument("--month-end-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def funded_loan(*, lenders: int, index: int, autopay: bool = False):
    """Return the repaying loan of a settled debt campaign with ``lenders`` held pledges."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from lending.models import Loan, LoanTerms
    from pledges.testing import held_pledges_create_bulk
    from projects.models import Campaign, CampaignStatus, Category, FundingModel
    from settlement.services import campaigns_close_due, settlement_run

    borrower = get_user_model().objects.create(username=f"borrower-{index}", email=f"b{index}@example.com")
    category, _ = Category.objects.get_or_create(slug="benchmarks", defaults={"name": "Benchmarks"})
    now = timezone.now()
    campaign = Campaign.objects.create(
        initiator=borrower,
        title=f"Loan {index}",
        slug=f"loan-{index}",
        summary="Many lenders.",
        category=category,
        goal=1,
        funding_model=FundingModel.DEBT,
        status=CampaignStatus.LIVE,
        launched_at=now - timedelta(days=30),
        deadline=now + timedelta(days=1),
        platform_fee_bps=500,
    )
    LoanTerms.objects.create(
        campaign=campaign, rate_bps=1_200, term_months=12, repayment_type="annuity", servicing_fee_bps=100
    )
    held_pledges_create_bulk(campaign=campaign, count=lenders, amount=lambda i: 2_500 + (i * 7919) % 50_000)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    loan = Loan.objects.get(campaign=campaign)
    if autopay:
        Loan.objects.filter(pk=loan.pk).update(autopay_token="tok_visa")
    return loan


def verify() -> tuple[float, int]:
    from settlement.verification import ledger_verify

    started = time.perf_counter()
    problems = ledger_verify()
    for problem in problems[:5]:
        print("  ledger:", problem)
    return time.perf_counter() - started, len(problems)


def flush() -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("flush", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def bench_payout(args) -> dict:
    from django.db import connection

    from lending.models import LenderPayout
    from lending.services import loan_repay

    flush()
    loan = funded_loan(lenders=args.lenders, index=1)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    first = loan.installments.get(number=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    walls = []
    for attempt, amount in enumerate([first.total, first.total, 1_234_567]):
        started, cpu, db_cpu = time.perf_counter(), time.process_time(), _process_cpu_seconds(backend)
        repayment = loan_repay(loan=loan, actor=loan.borrower, amount=amount, idempotency_key=f"bench-{attempt}")
        walls.append(time.perf_counter() - started)
        cpu, db_cpu = time.process_time() - cpu, _process_cpu_seconds(backend) - db_cpu
        lines = LenderPayout.objects.filter(repayment=repayment).count()
        print(
            f"repayment {attempt + 1} of {amount} to {lines} lenders: {walls[-1]:.3f} s "
            f"(python cpu {cpu:.3f} s, database backend cpu {db_cpu:.3f} s, load {os.getloadavg()[0]:.1f})"
        )
    verify_s, problems = verify()
    return {"walls": walls, "lines": lines, "verify_s": verify_s, "problems": problems}


def bench_month_end_seed(args) -> None:
    from django.db import connection

    from lending.models import DueWorkKind, LoanDueWork

    flush()
    started = time.perf_counter()
    for index in range(args.loans):
        funded_loan(lenders=args.loan_lenders, index=index, autopay=True)
        if index in (0, 9) or index % 50 == 49:
            # After the flush the tables' statistics say empty, so PostgreSQL checks each deferred
            # foreign key at commit by scanning the whole referenced table: fresh statistics keep
            # seeding linear in the loans instead of quadratic.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        if index % 100 == 99:
            print(f"  seeded {index + 1} loans ({time.perf_counter() - started:.0f} s)", flush=True)
    # Earlier runs sent the reminders; every loan's first installment is due today.
    LoanDueWork.objects.exclude(kind=DueWorkKind.CHARGE).update(done_at=datetime.now().astimezone())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def month_end_child() -> None:
    """Run the month-end charges (in this fresh process) and print wall time and peak RSS as JSON."""
    from django.db import connection
    from django.utils import timezone

    from lending.models import Installment, LenderPayout, Repayment
    from lending.services import loans_run_due_work

    due = Installment.objects.filter(number=1).values_list("due_date", flat=True).first()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    backend_cpu = _process_cpu_seconds(backend)
    now = datetime.combine(due, datetime.min.time(), tzinfo=timezone.get_current_timezone()) + timedelta(hours=1)
    started, cpu = time.perf_counter(), time.process_time()
    counts = {"charged": 0}
    while True:
        batch = loans_run_due_work(now=now, limit=200)
        counts["charged"] += batch["charged"]
        if not any(batch.values()):
            break
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    backend_cpu = _process_cpu_seconds(backend) - backend_cpu
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "db_cpu": backend_cpu,
                "charged": counts["charged"],
                "repayments": Repayment.objects.count(),
                "lines": LenderPayout.objects.count(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def _process_cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds of a process on this machine (the database backend's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_schedules(args) -> dict:
    from lending.schedules import REPAYMENT_TYPES, schedule_build

    rng = random.Random(12)
    terms = [
        (
            rng.randint(1, 10**9),
            rng.randint(0, 3_600),
            term := rng.randint(1, 60),
            rng.choice(REPAYMENT_TYPES),
            rng.randint(0, min(6, term - 1)),
        )
        for _ in range(args.schedules)
    ]
    walls, cpus, rows = [], [], 0
    for _ in range(5):
        started, cpu = time.perf_counter(), time.process_time()
        rows = 0
        for principal, rate, term, kind, grace in terms:
            schedule = schedule_build(
                principal=principal,
                rate_bps=rate,
                term_months=term,
                repayment_type=kind,
                grace_months=grace,
                fee_bps=100,
                start=date(2027, 1, 15),
            )
            rows += len(schedule)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return {
        "median": statistics.median(walls),
        "min": min(walls),
        "max": max(walls),
        "cpu": statistics.median(cpus),
        "rows": rows,
    }


def main() -> None:
    args = parse_args()
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    os.environ.setdefault("PAYMENT_GATEWAY", "escrow.gateway.SandboxGateway")
    os.environ["LENDING_INVESTOR_POLICY"] = "none"
    setup_django_on_postgres(args.database_url, benchmark="lending")
    if args.month_end_child:
        month_end_child()
        return
    only = set(args.only.split(","))
    if "schedules" in only:
        result = bench_schedules(args)
        print(
            f"schedules for {args.schedules} loans ({result['rows']} installments): median {result['median']:.3f} s "
            f"[{result['min']:.3f} - {result['max']:.3f}], cpu {result['cpu']:.3f} s "
            f"(budget 1 s: {'met' if result['median'] <= 1 else 'NOT met'})"
        )
    if "payout" in only:
        result = bench_payout(args)
        print(
            f"payout to {result['lines']} lenders: first {result['walls'][0]:.3f} s (creates their ledger accounts), "
            f"then {result['walls'][1]:.3f} s and {result['walls'][2]:.3f} s; "
            f"verify_ledger {result['verify_s']:.1f} s, {result['problems']} problems "
            f"(budget 1 s: {'met' if max(result['walls']) <= 1 else 'NOT met'})"
        )
    if "month" in only:
        if not args.month_seeded:
            started = time.perf_counter()
            bench_month_end_seed(args)
            print(f"seeded {args.loans} loans x {args.loan_lenders} lenders in {time.perf_counter() - started:.0f} s")
            if args.month_seed_only:
                return
        load = os.getloadavg()
        child = subprocess.run(
            [sys.executable, __file__, "--month-end-child", "--database-url", args.database_url],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        verify_s, problems = verify()
        within = result["wall"] <= 20 and result["peak_rss_mb"] <= 300 and not problems
        print(
            f"month-end: {result['charged']} loans charged, {result['lines']} payout lines in {result['wall']:.2f} s "
            f"(python cpu {result['cpu']:.2f} s, database backend cpu {result['db_cpu']:.2f} s), "
            f"peak RSS {result['peak_rss_mb']:.0f} MB; "
            f"verify_ledger {verify_s:.1f} s, {problems} problems "
            f"(budget 20 s / 300 MB: {'met' if within else 'NOT met'}); "
            f"load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()

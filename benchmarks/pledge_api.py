"""Pledge API benchmark: one hot campaign, 16 concurrent clients over HTTP to gunicorn + PostgreSQL.

Budget: >= 500 pledges/s, p99 <= 100 ms, 0 errors, and at least 0.15 of the raw database ceiling.

It uses its own PostgreSQL database (``crowdfund_bench_api`` by default, created and migrated
here). It creates one live campaign and N backers with API tokens, starts gunicorn (gthread
workers, throttles raised out of the way), and sends 20,000 ``POST /api/v1/campaigns/{id}/pledges/``
from 16 client threads on keep-alive connections, each with its own Idempotency-Key. It reports
pledges/s, p50 / p99 latency and errors, then checks the ledger (``ledger_verify()``).

In the same run it measures the database ceiling for the same hot spot without Django: 8
psycopg clients, each transaction one INSERT of a pledge row plus one UPDATE of the campaign's
total row; and prints the API's pledges/s as a ratio of it.

    .venv/bin/python benchmarks/pledge_api.py [--pledges 20000] [--clients 16] [--workers 3]
                                              [--threads 8] [--db-clients 8] [--db-seconds 10]
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from _common import BASE_DIR, free_port, setup_django_on_postgres

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crowdfund_bench_api"
BUDGET_PLEDGES_PER_SECOND = 500
BUDGET_P99_MS = 100
BUDGET_RATIO = 0.15


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pledges", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--backers", type=int, default=2_000, help="distinct backers sending the pledges")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--db-clients", type=int, default=8, help="psycopg clients for the database ceiling")
    parser.add_argument("--db-seconds", type=float, default=10.0, help="how long to measure the ceiling")
    parser.add_argument(
        "--broker-url",
        default="redis://127.0.0.1:6379/8",
        help="Celery broker the server publishes to (emptied first; no worker consumes it)",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL), help="PostgreSQL only"
    )
    return parser.parse_args()


def configure_django(args: argparse.Namespace) -> None:
    setup_django_on_postgres(args.database_url, benchmark="pledge API")


def seed(args: argparse.Namespace) -> tuple[int, list[str]]:
    """Create one live campaign and the backers with tokens; return (campaign id, tokens)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from projects.models import Campaign, CampaignStatus, Category

    User = get_user_model()
    run = f"{int(time.time())}"
    initiator = User.objects.create(username=f"bench-initiator-{run}", password=make_password(None))
    category, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    campaign = Campaign.objects.create(
        initiator=initiator,
        title="Hot campaign",
        slug=f"hot-campaign-{run}",
        summary="Everyone pledges here.",
        description="A benchmark.",
        category=category,
        goal=10**12,
        status=CampaignStatus.LIVE,
        launched_at=timezone.now(),
        deadline=timezone.now() + timedelta(days=30),
        platform_fee_bps=500,
    )
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"bench-{run}-{i}", password=password) for i in range(args.backers)], batch_size=1000
    )
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users], batch_size=1000)
    return campaign.pk, [t.key for t in tokens]


def start_gunicorn(args: argparse.Namespace, port: int, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "API_THROTTLE_USER": "100000000/min",
        "API_THROTTLE_IP": "100000000/min",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "ERROR",
        # As in production: Celery messages (receipt e-mail, fraud check) go to Redis.
        "CELERY_BROKER_URL": args.broker_url,
    }
    command = [str(Path(sys.executable).with_name("gunicorn")), "crowdfund_site.wsgi", "-b", f"127.0.0.1:{port}"]
    command += ["-w", str(args.workers), "-k", "gthread", "--threads", str(args.threads), "--keep-alive", "30"]
    command += ["--log-level", "error", "--backlog", "2048"]
    server = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=log)
    give_up_at = time.monotonic() + 60
    while time.monotonic() < give_up_at:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/categories/")
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("gunicorn did not start")


def run_clients(args, port: int, campaign_id: int, tokens: list[str]) -> tuple[float, list[float], dict]:
    """Send the pledges from ``args.clients`` threads; return (seconds, latencies, errors by status)."""
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    errors: list[dict] = [{} for _ in range(args.clients)]
    barrier = threading.Barrier(args.clients + 1)
    path = f"/api/v1/campaigns/{campaign_id}/pledges/"
    body = json.dumps({"amount": 2_500, "currency": "USD", "reward": None, "payment_token": "tok_visa"})

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = range(n, args.pledges, args.clients)
        barrier.wait()
        for i in mine:
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Token {tokens[i % len(tokens)]}",
                "Idempotency-Key": f"bench-{i}",
            }
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies[n].append(time.perf_counter() - started)
            if status != 201:
                errors[n][status] = errors[n].get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    merged: dict = {}
    for per_client in errors:
        for status, count in per_client.items():
            merged[status] = merged.get(status, 0) + count
    return elapsed, [x for per_client in latencies for x in per_client], merged


def database_ceiling(args: argparse.Namespace) -> float:
    """Return transactions/s of (INSERT pledge row + UPDATE campaign total) from 8 psycopg clients."""
    import psycopg

    url = urlunsplit(urlsplit(args.database_url)._replace(scheme="postgresql"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_ceiling_pledge, bench_ceiling_campaign")
        conn.execute("CREATE TABLE bench_ceiling_campaign (id int PRIMARY KEY, total bigint NOT NULL)")
        conn.execute(
            "CREATE TABLE bench_ceiling_pledge (id bigserial PRIMARY KEY, campaign_id int NOT NULL, "
            "backer_id int NOT NULL, amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO bench_ceiling_campaign VALUES (1, 0)")
    counts = [0] * args.db_clients
    stop = threading.Event()
    barrier = threading.Barrier(args.db_clients + 1)

    def client(n: int) -> None:
        with psycopg.connect(url) as conn:
            barrier.wait()
            while not stop.is_set():
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO bench_ceiling_pledge (campaign_id, backer_id, amount) VALUES (1, %s, 2500)", [n]
                    )
                    conn.execute("UPDATE bench_ceiling_campaign SET total = total + 2500 WHERE id = 1")
                counts[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.db_clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(args.db_seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_ceiling_pledge, bench_ceiling_campaign")
    return sum(counts) / elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    args = parse_args()
    configure_django(args)
    campaign_id, tokens = seed(args)
    if args.broker_url.startswith("redis://"):
        import redis

        redis.Redis.from_url(args.broker_url).flushdb()  # no messages left from an earlier run
    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = start_gunicorn(args, port, log)
        try:
            elapsed, latencies, errors = run_clients(args, port, campaign_id, tokens)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    from escrow.verification import ledger_verify
    from projects.models import Campaign

    campaign = Campaign.objects.get(pk=campaign_id)
    problems = ledger_verify()
    ceiling = database_ceiling(args)

    rate = args.pledges / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = percentile(latencies, 0.99) * 1000
    error_count = sum(errors.values())
    ratio = rate / ceiling
    print(f"pledges:            {args.pledges} from {args.clients} clients, {len(tokens)} backers, one campaign")
    print(f"server:             gunicorn {args.workers} workers x {args.threads} threads (gthread), PostgreSQL")
    print(f"elapsed:            {elapsed:.1f} s")
    print(f"pledges/s:          {rate:.0f}   (budget >= {BUDGET_PLEDGES_PER_SECOND})")
    print(f"latency p50 / p99:  {p50:.1f} / {p99:.1f} ms   (budget p99 <= {BUDGET_P99_MS} ms)")
    print(f"errors:             {error_count} {errors or ''}  (budget 0)")
    print(f"campaign total:     {campaign.pledged_amount} (expected {(args.pledges - error_count) * 2_500})")
    print(f"ledger_verify():    {'OK' if not problems else problems[:3]}")
    print(f"database ceiling:   {ceiling:.0f} tx/s (INSERT + UPDATE hot row, {args.db_clients} psycopg clients)")
    print(f"ratio:              {ratio:.3f}   (budget >= {BUDGET_RATIO})")
    within = (
        rate >= BUDGET_PLEDGES_PER_SECOND
        and p99 <= BUDGET_P99_MS
        and error_count == 0
        and ratio >= BUDGET_RATIO
        and not problems
    )
    print("within budget" if within else "OVER BUDGET")
    sys.exit(0 if within else 1)


if __name__ == "__main__":
    main()

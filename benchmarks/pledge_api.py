"""Pledge API benchmark: one hot campaign, 16 concurrent clients over HTTP to gunicorn + PostgreSQL.

Budget (issue 17): the replay of our pledge's SQL >= 0.25 of the raw database ceiling, the API over
HTTP >= 0.35 of that replay in the same run, 0 errors, p99 <= 250 ms. Statements per new pledge of a
backer seen before, counted from the PostgreSQL server log: <= 10.

It uses its own PostgreSQL database (``crowdfund_bench_api`` by default, created and migrated
here). It creates one live campaign and N backers with API tokens, starts gunicorn (gthread
workers, throttles raised out of the way), and sends 20,000 ``POST /api/v1/campaigns/{id}/pledges/``
from 16 client threads on keep-alive connections, each with its own Idempotency-Key. It reports
pledges/s, p50 / p99 latency and errors, then checks the ledger (``ledger_verify()``).

In the same run it measures the database ceiling for the same hot spot without Django: 8
psycopg clients, each transaction one INSERT of a pledge row plus one UPDATE of the campaign's
total row; and prints the API's pledges/s as a ratio of it. Then, as a second reference, it replays
the SQL one API pledge sends (captured from the server log, see ``pledge_sql_replay``) from the
same number of psycopg clients with no Python web stack: what the database work of our pledge
alone allows, and how much of that the API reaches.

    .venv/bin/python benchmarks/pledge_api.py [--pledges 20000] [--clients 16] [--workers 3]
                                              [--threads 8] [--db-clients 8] [--db-seconds 10]
"""

import argparse
import contextlib
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from _common import BASE_DIR, free_port, setup_django_on_postgres, statements_logged

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crowdfund_bench_api"
BUDGET_P99_MS = 250
BUDGET_REPLAY_OF_CEILING = 0.25
BUDGET_API_OF_REPLAY = 0.35
BUDGET_STATEMENTS = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pledges", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument(
        "--backers",
        type=int,
        default=None,
        help="distinct backers sending the pledges (default and minimum: one per pledge, since a backer "
        "holds at most one open pledge per campaign)",
    )
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
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    User = get_user_model()
    run = f"{int(time.time())}"
    campaign_id = hot_campaign_create(slug=f"hot-campaign-{run}")
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"bench-{run}-{i}", password=password) for i in range(args.backers)], batch_size=1000
    )
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users], batch_size=1000)
    # Backers seen before: their funding account exists and its id is in the cache, as after an
    # earlier pledge elsewhere (one open pledge per backer per campaign, so each pledges here once).
    from escrow.ledger import ledger_accounts_get_or_create_cached
    from escrow.models import AccountKind
    from escrow.vocabulary import backer_funding_code

    for start in range(0, len(users), 1000):
        specs = [(backer_funding_code(u.pk), AccountKind.FUNDING_SOURCE) for u in users[start : start + 1000]]
        ledger_accounts_get_or_create_cached(specs=specs, currency="USD")
    return campaign_id, [t.key for t in tokens]


def hot_campaign_create(*, slug: str) -> int:
    """Create a live campaign (and its initiator) everyone can pledge to; return its id."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from projects.models import Campaign, CampaignStatus, Category

    initiator = get_user_model().objects.create(username=f"bench-initiator-{slug}", password=make_password(None))
    category, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    campaign = Campaign.objects.create(
        initiator=initiator,
        title="Hot campaign",
        slug=slug,
        summary="Everyone pledges here.",
        description="A benchmark.",
        category=category,
        goal=10**12,
        status=CampaignStatus.LIVE,
        launched_at=timezone.now(),
        deadline=timezone.now() + timedelta(days=30),
        platform_fee_bps=500,
    )
    return campaign.pk


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


def backend_cpu_seconds(pids: list[int]) -> float | None:
    """Return the CPU seconds the PostgreSQL backends ``pids`` have used; None if not on this machine.

    A figure the other load on a shared machine moves much less than rates do: what the
    database's own work costs, whatever waits for the disk or a core.
    """
    total = 0.0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return None
    return total


def database_ceiling(args: argparse.Namespace) -> tuple[float, float | None]:
    """Return (transactions/s, backend CPU ms per transaction) of INSERT pledge row + UPDATE campaign total.

    From ``args.db_clients`` psycopg clients; the CPU is None when the server is on another machine.
    """
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

    pids: list[int] = []

    def client(n: int) -> None:
        with psycopg.connect(url) as conn:
            pids.append(conn.info.backend_pid)
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
    started, cpu_started = time.perf_counter(), backend_cpu_seconds(pids)
    time.sleep(args.db_seconds)
    stop.set()
    cpu_ended, done = backend_cpu_seconds(pids), sum(counts)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_ceiling_pledge, bench_ceiling_campaign")
    cpu_ms = None if cpu_started is None or cpu_ended is None else (cpu_ended - cpu_started) * 1000 / max(done, 1)
    return sum(counts) / elapsed, cpu_ms


def _columns(table: str, names: str) -> str:
    return ", ".join(f'"{table}"."{name}"' for name in names.split())


_USER = _columns(
    "accounts_user",
    "id password last_login is_superuser username first_name last_name email is_staff is_active date_joined "
    "display_name bio preferred_language email_verified",
)
_CAMPAIGN = _columns(
    "projects_campaign",
    "id initiator_id title slug summary description category_id currency goal funding_model status duration_days "
    "launch_on_approval launched_at deadline submitted_at reviewed_at reviewed_by_id review_feedback pledged_amount "
    "backer_count platform_fee_bps settlement_outcome settled_at last_settlement_progress_at created_at updated_at",
)
# One API pledge's statements as the server log shows them (log_statement = 'all', a steady
# gunicorn worker, a backer who has pledged before), in order, with Django's own SQL text.
SQL_TOKEN_USER = (
    f'SELECT "authtoken_token"."key", "authtoken_token"."user_id", "authtoken_token"."created", {_USER} '
    'FROM "authtoken_token" INNER JOIN "accounts_user" ON ("authtoken_token"."user_id" = "accounts_user"."id") '
    'WHERE "authtoken_token"."key" = %s LIMIT 21'
)
SQL_CAMPAIGN_VISIBLE = (
    f'SELECT {_CAMPAIGN} FROM "projects_campaign" '
    "WHERE ((\"projects_campaign\".\"status\" IN ('live', 'closing', 'succeeded', 'failed') "
    'OR "projects_campaign"."initiator_id" = %s) AND "projects_campaign"."id" = %s) '
    'ORDER BY "projects_campaign"."created_at" DESC LIMIT 1'
)
SQL_PLEDGE_INSERT = (
    'INSERT INTO "pledges_pledge" ("backer_id", "campaign_id", "reward_id", "amount", "currency", "status", '
    '"idempotency_key", "request_fingerprint", "payment_reference", "failure_code", "failure_message", '
    '"card_fingerprint", "created_at", "held_at", "closed_at", "replaces_id") '
    "VALUES (%s, %s, NULL, %s, %s, 'pending', %s, %s, '', '', '', '', %s, NULL, NULL, NULL) "
    'RETURNING "pledges_pledge"."id", "pledges_pledge"."card_fingerprint"'
)
SQL_GATEWAY_CHARGE = (
    'INSERT INTO "escrow_gatewayoperation" ("kind", "idempotency_key", "status", "amount", "currency", "token", '
    '"destination", "charge_id", "refunded_amount", "error_code", "error_message", "attempts", "created_at", '
    '"updated_at") '
    "VALUES ('charge', %s, 'succeeded', %s, %s, %s, '', NULL, 0, '', '', 1, %s, %s) "
    'RETURNING "escrow_gatewayoperation"."id"'
)
SQL_PLEDGE_HELD = (
    'UPDATE "pledges_pledge" SET "status" = %s, "payment_reference" = %s, "card_fingerprint" = %s, '
    '"held_at" = %s WHERE ("pledges_pledge"."id" = %s AND "pledges_pledge"."status" = %s)'
)
SQL_STATUS_CHANGE = (
    'INSERT INTO "pledges_pledgestatuschange" ("pledge_id", "from_status", "to_status", "actor_id", "reason", '
    "\"created_at\") VALUES (%s, 'pending', 'held', %s, '', %s) RETURNING \"pledges_pledgestatuschange\".\"id\""
)
SQL_CAMPAIGN_TOTALS = """
    UPDATE projects_campaign
       SET pledged_amount = pledged_amount + %(amount)s,
           backer_count = backer_count + CASE WHEN EXISTS (
               SELECT 1 FROM "pledges_pledge"
                WHERE campaign_id = %(campaign)s AND backer_id = %(backer)s
                  AND status IN (%(held)s, %(released)s) AND id <> %(pledge)s
           ) THEN 0 ELSE 1 END
     WHERE id = %(campaign)s AND status = %(live)s AND deadline > %(now)s
"""


def pledge_sql_replay(
    args: argparse.Namespace, *, campaign_id: int, tokens: list[str]
) -> tuple[float, float, float, float | None]:
    """Replay one API pledge's SQL from ``args.db_clients`` psycopg clients.

    Return (pledges/s, statements per pledge, CPU cores the clients themselves used, backend CPU
    ms per pledge or None).

    Each iteration sends what one ``POST /api/v1/campaigns/{id}/pledges/`` sends PostgreSQL, in
    the same transactions and over the same protocol as Django's connection: parameters bound
    server-side and each statement prepared once a connection has sent it ``prepare_threshold``
    times, as in a long-lived web worker (the settings' default on PostgreSQL); with
    ``DATABASE_PREPARED_STATEMENTS=0``, client-side (a ``ClientCursor``, every statement parsed
    and planned again). With fresh values: new
    idempotency keys, the pledge id from RETURNING, backers and tokens in rotation. Autocommit unless noted:

    - token + user: DRF token authentication
    - SELECT campaign: the view finds it through the visibility selector
    - INSERT pledge (pending): ``pledge_create`` inserts straight away (``create_unless_taken``);
      its key, unique per backer, is the request's idempotency
    - INSERT escrow_gatewayoperation: the sandbox gateway's charge
    - one transaction (BEGIN ... COMMIT), ``_pledge_hold_if_pending``: UPDATE the pledge to held
      where still pending; the ledger transaction and its entries in one statement
      (``escrow.ledger._POST_SQL``, with the account ids the cache holds); INSERT the status
      change; UPDATE the campaign's total and backer count

    Left out, because it is not database work: the Redis reads and writes (account ids, the
    page-cache bump) and the Celery messages (receipt e-mail, fraud check). The replay's clients
    are threads of this process, as for the ceiling. Rows written are as the API writes them
    (held pledges with their hold posting, balanced entries), so ``ledger_verify()`` holds.

    When the pledge path changes, capture it again rather than edit by reading the code: the
    benchmark's "statements per pledge" line counts the server log (``_common.statements_logged``);
    ``ALTER DATABASE <scratch> SET log_statement = 'all'`` and read the log for the text.
    """
    import psycopg
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from escrow.ledger import _POST_SQL, ledger_accounts_get_or_create
    from escrow.models import LedgerAccount, LedgerEntry, LedgerTransaction
    from escrow.vocabulary import hold_account_specs

    url = urlunsplit(urlsplit(args.database_url)._replace(scheme="postgresql"))
    amount, currency, token = 2_500, "USD", "tok_visa"  # the API run's body
    pledge_fingerprint = f"{campaign_id}||{amount}|{currency}|{token}"
    quote = connection.ops.quote_name
    sql_post = _POST_SQL.format(
        account=quote(LedgerAccount._meta.db_table),
        transaction=quote(LedgerTransaction._meta.db_table),
        entry=quote(LedgerEntry._meta.db_table),
    )
    # The account ids the API reads from the cache for a backer seen before (not timed).
    user_of = dict(Token.objects.filter(key__in=tokens).values_list("key", "user_id"))
    specs = {
        spec for user_id in user_of.values() for spec in hold_account_specs(backer_id=user_id, campaign_id=campaign_id)
    }
    account_ids = {
        code: a.pk for code, a in ledger_accounts_get_or_create(specs=sorted(specs), currency=currency).items()
    }
    options = connection.settings_dict["OPTIONS"]
    cursor_factory = psycopg.Cursor if options.get("server_side_binding") else psycopg.ClientCursor
    run = f"{time.time_ns()}"
    counts = [0] * args.db_clients
    statements = [0] * args.db_clients
    failures: list[BaseException] = []
    stop = threading.Event()
    barrier = threading.Barrier(args.db_clients + 1)

    def one_pledge(conn, n: int, i: int) -> int:
        sent = 0

        def execute(sql: str, params=()):
            nonlocal sent
            sent += 1
            return conn.execute(sql, params)

        key = f"replay-{run}-{n}-{i}"
        user_id = execute(SQL_TOKEN_USER, [tokens[n + i * args.db_clients]]).fetchall()[0][1]
        execute(SQL_CAMPAIGN_VISIBLE, [user_id, campaign_id]).fetchall()
        created_at = datetime.now(UTC)
        pledge_id = execute(
            SQL_PLEDGE_INSERT, [user_id, campaign_id, amount, currency, key, pledge_fingerprint, created_at]
        ).fetchone()[0]
        now = datetime.now(UTC)
        charge = [f"charge:pledge:{pledge_id}", amount, currency, token, now, now]
        charge_id = execute(SQL_GATEWAY_CHARGE, charge).fetchone()[0]
        sent += 2  # BEGIN and COMMIT
        with conn.transaction():
            held = execute(SQL_PLEDGE_HELD, ["held", f"ch_{charge_id}", "", datetime.now(UTC), pledge_id, "pending"])
            if held.rowcount != 1:
                raise RuntimeError(f"pledge {pledge_id} was not pending")
            funding, escrow = f"backer:{user_id}:funding", f"campaign:{campaign_id}:escrow"
            reference = f"pledge:{pledge_id}"
            matched, txn_id = execute(
                sql_post,
                {
                    "account_ids": [account_ids[funding], account_ids[escrow]],
                    "codes": [funding, escrow],
                    "amounts": [-amount, amount],
                    "currency": currency,
                    "kind": "hold",
                    "key": f"hold:{reference}",
                    "reference": reference,
                    "description": "",
                    "created_at": datetime.now(UTC),
                    "leg_count": 2,
                },
            ).fetchone()
            if matched != 2 or txn_id is None:
                raise RuntimeError(f"the hold of pledge {pledge_id} was not posted")
            execute(SQL_STATUS_CHANGE, [pledge_id, user_id, datetime.now(UTC)]).fetchone()
            totals = {"amount": amount, "campaign": campaign_id, "backer": user_id, "pledge": pledge_id}
            totals |= {"held": "held", "released": "released", "live": "live", "now": datetime.now(UTC)}
            counted = execute(SQL_CAMPAIGN_TOTALS, totals).rowcount
            if counted != 1:
                raise RuntimeError(f"campaign {campaign_id} no longer live")
        return sent

    def client(n: int) -> None:
        try:
            with psycopg.connect(url, autocommit=True, cursor_factory=cursor_factory) as conn:
                conn.prepare_threshold = options.get("prepare_threshold")
                pids.append(conn.info.backend_pid)
                barrier.wait()
                # Each backer once (one open pledge per backer per campaign): stop when they are used up.
                while not stop.is_set() and n + counts[n] * args.db_clients < len(tokens):
                    statements[n] += one_pledge(conn, n, counts[n])
                    counts[n] += 1
        except BaseException as error:
            failures.append(error)
            stop.set()
            barrier.abort()
            raise

    pids: list[int] = []
    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.db_clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed to connect: reported below
        barrier.wait()
    started, cpu_started = time.perf_counter(), time.process_time()
    backend_started = backend_cpu_seconds(pids)
    stop.wait(args.db_seconds)  # cut short if a client fails
    stop.set()
    backend_ended, backend_done = backend_cpu_seconds(pids), sum(counts)
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if failures:
        sys.exit(f"pledge SQL replay failed: {failures[0]!r}")
    done = sum(counts)
    backend_ms = None
    if backend_started is not None and backend_ended is not None:
        backend_ms = (backend_ended - backend_started) * 1000 / max(backend_done, 1)
    return done / elapsed, sum(statements) / max(done, 1), cpu / elapsed, backend_ms


def statements_per_pledge(args: argparse.Namespace, *, campaign_id: int, tokens: list[str], log) -> int | None:
    """Count, in the server log, the statements of one API pledge of a backer seen before.

    On a gunicorn of its own (one worker, one thread, production settings) started while the
    server logs every statement of this database; after a few warm-up pledges (the worker opens
    its connection, the backer's ledger accounts exist).
    """
    body = json.dumps({"amount": 2_500, "currency": "USD", "reward": None, "payment_token": "tok_visa"})
    path = f"/api/v1/campaigns/{campaign_id}/pledges/"

    def pledge(conn, token: str = tokens[0], path: str = path) -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
        conn.request("POST", path, body=body, headers={**headers, "Idempotency-Key": f"count-{time.time_ns()}"})
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            sys.exit(f"the counted pledge was answered {response.status}")

    with statements_logged(args.database_url) as count:
        port = free_port()
        server = start_gunicorn(argparse.Namespace(**{**vars(args), "workers": 1, "threads": 1}), port, log)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            # Warm-up: another backer makes the campaign's escrow account; the counted backer
            # pledges on two other campaigns first (one open pledge per backer per campaign).
            pledge(conn, token=tokens[1])
            for _ in range(2):
                elsewhere = hot_campaign_create(slug=f"hot-campaign-warm-{time.time_ns()}")
                pledge(conn, path=f"/api/v1/campaigns/{elsewhere}/pledges/")
            counted = count(lambda: pledge(conn))
            conn.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    return counted


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    args = parse_args()
    if args.backers is None or args.backers < args.pledges:
        args.backers = args.pledges
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
        # On a campaign of its own, so that the API run's total stays its own.
        count_campaign_id = hot_campaign_create(slug=f"hot-campaign-count-{time.time_ns()}")
        statements = statements_per_pledge(args, campaign_id=count_campaign_id, tokens=tokens, log=log)
    from django.db import connection

    from projects.models import Campaign
    from settlement.verification import ledger_verify

    campaign = Campaign.objects.get(pk=campaign_id)
    # Each run adds tens of thousands of rows; with statistics from before them PostgreSQL picks
    # a plan for the ledger checks that takes minutes instead of a fraction of a second.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    problems = ledger_verify()
    ceiling, ceiling_cpu_ms = database_ceiling(args)
    # After the checks above, and on a campaign of its own, so the API's figures stay its own.
    replay_campaign_id = hot_campaign_create(slug=f"hot-campaign-replay-{time.time_ns()}")
    replay, replay_statements, replay_client_cpu, replay_cpu_ms = pledge_sql_replay(
        args, campaign_id=replay_campaign_id, tokens=tokens
    )

    rate = args.pledges / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = percentile(latencies, 0.99) * 1000
    error_count = sum(errors.values())
    of_ceiling, of_replay = replay / ceiling, rate / replay
    print(f"pledges:            {args.pledges} from {args.clients} clients, {len(tokens)} backers, one campaign")
    print(f"server:             gunicorn {args.workers} workers x {args.threads} threads (gthread), PostgreSQL")
    print(f"elapsed:            {elapsed:.1f} s")
    print(f"API:                {rate:.0f} pledges/s over HTTP")
    print(f"latency p50 / p99:  {p50:.1f} / {p99:.1f} ms   (budget p99 <= {BUDGET_P99_MS} ms)")
    print(f"errors:             {error_count} {errors or ''}  (budget 0)")
    print(f"campaign total:     {campaign.pledged_amount} (expected {(args.pledges - error_count) * 2_500})")
    print(f"ledger_verify():    {'OK' if not problems else problems[:3]}")
    print(f"database ceiling:   {ceiling:.0f} tx/s (INSERT + UPDATE hot row, {args.db_clients} psycopg clients)")
    print(
        f"pledge SQL replay:  {replay:.0f} pledges/s (our pledge's own SQL, no Python web stack; "
        f"{replay_statements:.1f} statements each)"
    )
    options = connection.settings_dict["OPTIONS"]
    binding = "client-side"
    if options.get("server_side_binding"):
        binding = f"server-side, prepared after {options.get('prepare_threshold')} uses"
    print(
        f"  clients:          {args.db_clients} psycopg clients, using {replay_client_cpu:.2f} of a core themselves; "
        f"parameters bound {binding}"
    )
    print(f"  of the ceiling:   {of_ceiling:.3f}   (budget >= {BUDGET_REPLAY_OF_CEILING})")
    if replay_cpu_ms is not None and ceiling_cpu_ms is not None:
        print(
            f"  database CPU:     {replay_cpu_ms:.2f} ms per pledge, {ceiling_cpu_ms:.2f} ms per ceiling transaction "
            f"(backends' own CPU, which a busy machine moves less than the rates)"
        )
    print(f"API of the replay:  {of_replay:.3f}   (budget >= {BUDGET_API_OF_REPLAY})")
    shown = "unreadable log" if statements is None else statements
    print(
        f"statements:         {shown} per pledge of a backer seen before (server log, BEGIN and COMMIT "
        f"included; budget <= {BUDGET_STATEMENTS})"
    )
    within = (
        p99 <= BUDGET_P99_MS
        and error_count == 0
        and of_ceiling >= BUDGET_REPLAY_OF_CEILING
        and of_replay >= BUDGET_API_OF_REPLAY
        and statements is not None
        and statements <= BUDGET_STATEMENTS
        and not problems
    )
    print("within budget" if within else "OVER BUDGET")
    sys.exit(0 if within else 1)


if __name__ == "__main__":
    main()

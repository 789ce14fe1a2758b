"""Launch-rush benchmark: 3,000 backers race for a 500-slot early-bird tier while visitors load pages.

The moment that breaks crowdfunding sites is the first seconds of a launch. One live campaign, in
a database of ``--campaigns`` live campaigns, has an early-bird tier of ``--slots`` slots and two
unlimited tiers. ``--backers`` distinct backers, half with API tokens and half with logged-in web
sessions (the pledge form, CSRF and all), each send one pledge for the early bird from
``--pledge-clients`` concurrent keep-alive clients, all released at once; meanwhile
``--page-clients`` logged-out visitors load the campaign's page and the discover page. PostgreSQL,
gunicorn (gthread workers) as in production, Redis as cache and Celery broker (no worker
consumes it: the receipts and fraud checks queue up, as they would behind a busy worker).

It prints the slots sold, the answers by interface and status, latency p50 / p99 of the pledges
that got a slot and of the sold-out answers, the pages' req/s and p95 during the rush, the
campaign's total, ``ledger_verify()``, the statements one pledge and one sold-out answer send
(counted from the PostgreSQL server log), and two reference lines measured through the same
gunicorn in the same run (``benchmarks/_common.reference_lines``), with each budget also as a
ratio to them. Exit status 0 only when every budget is met.

Budgets (issue 17): exactly ``--slots`` sold, every other request answered sold out, no 5xx and
no timeout, sold-out p99 <= 300 ms, pages p95 <= 60 ms during the rush, total exact, ledger OK.

    .venv/bin/python benchmarks/rush.py [--campaigns 10000] [--backers 3000] [--slots 500]
                                        [--pledge-clients 32] [--page-clients 16] [--workers 3]
                                        [--threads 8] [--redis-url URL] [--database-url URL]
"""

import argparse
import http.client
import json
import os
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from datetime import timedelta
from urllib.parse import urlencode

from _common import percentile, reference_lines, setup_django_on_postgres, start_gunicorn, statements_logged

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crowdfund_bench_rush"
BUDGET_SOLD_OUT_P99_MS = 300
BUDGET_PAGES_P95_MS = 60
# The same budgets as multiples of the reference lines measured in the run (see benchmarks/README.md).
BUDGET_SOLD_OUT_P99_OVER_REFERENCE_P95 = 60
BUDGET_PAGES_P95_OVER_REFERENCE_P95 = 12
EARLY_BIRD_PRICE = 2_500
CARD = "4242424242424242"
SOLD_OUT_TEXT = "sold out"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=10_000, help="live campaigns in the database")
    parser.add_argument("--backers", type=int, default=3_000)
    parser.add_argument("--slots", type=int, default=500, help="the early-bird tier's limit")
    parser.add_argument("--pledge-clients", type=int, default=32)
    parser.add_argument("--page-clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--reference-seconds", type=float, default=5.0)
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/1",
        help="Redis database for the cache and the broker (emptied first)",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL), help="PostgreSQL only"
    )
    return parser.parse_args()


def seed_campaigns(count: int) -> None:
    """Fill the database up to ``count`` live campaigns (not timed; skipped when it holds enough)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from projects.models import Campaign, CampaignStatus, Category, RewardTier

    have = Campaign.objects.filter(status=CampaignStatus.LIVE).count()
    if have >= count:
        return
    now = timezone.now()
    run = time.time_ns()
    category, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    initiator = get_user_model().objects.create(username=f"rush-crowd-{run}", password=make_password(None))
    campaigns = Campaign.objects.bulk_create(
        [
            Campaign(
                initiator=initiator,
                title=f"Campaign {i}",
                slug=f"rush-crowd-{run}-{i}",
                summary="One of many.",
                description="A campaign among ten thousand. " * 5,
                category=category,
                goal=500_000,
                status=CampaignStatus.LIVE,
                launched_at=now - timedelta(days=i % 29),
                deadline=now + timedelta(days=1 + i % 29),
                platform_fee_bps=500,
            )
            for i in range(count - have)
        ],
        batch_size=2_000,
    )
    RewardTier.objects.bulk_create(
        [RewardTier(campaign=c, title="Thanks", description="A thank-you.", minimum_amount=1_000) for c in campaigns],
        batch_size=2_000,
    )


def seed_rush(args: argparse.Namespace) -> dict:
    """Create the launching campaign, its tiers and the backers; return what the clients need."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from projects.models import Campaign, CampaignStatus, Category, RewardTier

    User = get_user_model()
    run = time.time_ns()
    now = timezone.now()
    initiator = User.objects.create(username=f"rush-initiator-{run}", password=make_password(None))
    campaign = Campaign.objects.create(
        initiator=initiator,
        title="The launch everyone waited for",
        slug=f"rush-launch-{run}",
        summary="Early birds get it cheaper.",
        description="The launch of the year. " * 20,
        category=Category.objects.get(slug="bench"),
        goal=10**10,
        status=CampaignStatus.LIVE,
        launched_at=now,
        deadline=now + timedelta(days=30),
        platform_fee_bps=500,
    )
    early = RewardTier.objects.create(
        campaign=campaign,
        title="Early bird",
        description="The first ones.",
        minimum_amount=EARLY_BIRD_PRICE,
        quantity_limit=args.slots,
    )
    regular = RewardTier.objects.create(campaign=campaign, title="Backer", description="Ours.", minimum_amount=4_000)
    RewardTier.objects.create(campaign=campaign, title="Deluxe", description="Ours, signed.", minimum_amount=10_000)
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"rush-{run}-{i}", password=password) for i in range(args.backers)], batch_size=1_000
    )
    api_users, web_users = users[: len(users) // 2], users[len(users) // 2 :]
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in api_users], batch_size=1_000)
    backend = settings.AUTHENTICATION_BACKENDS[0]
    sessions = []
    for user in web_users:
        store = SessionStore()
        store[SESSION_KEY], store[BACKEND_SESSION_KEY] = str(user.pk), backend
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions.append(store.session_key)
    return {
        "campaign_id": campaign.pk,
        "slug": campaign.slug,
        "early_bird_id": early.pk,
        "regular_id": regular.pk,
        "tokens": [t.key for t in tokens],
        "sessions": sessions,
    }


class Answer:
    """One pledge request's outcome: which interface, what the backer was told, how long it took."""

    __slots__ = ("interface", "outcome", "seconds", "status")

    def __init__(self, interface: str, status, outcome: str, seconds: float):
        self.interface, self.status, self.outcome, self.seconds = interface, status, outcome, seconds


def _connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def _send(conn, method: str, path: str, body=None, headers=None) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read(), response


def api_pledge(
    conn, seed: dict, token: str, key: str, reward_id: int, amount: int, campaign_id: int | None = None
) -> tuple[int, str]:
    body = json.dumps({"amount": amount, "currency": "USD", "reward": reward_id, "payment_token": "tok_visa"})
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}", "Idempotency-Key": key}
    path = f"/api/v1/campaigns/{campaign_id or seed['campaign_id']}/pledges/"
    status, raw, _ = _send(conn, "POST", path, body, headers)
    if status == 201:
        return status, "held"
    code = json.loads(raw).get("code", "") if raw.startswith(b"{") else ""
    return status, code or "error"


_KEY_FIELD = re.compile(rb'name="idempotency_key" value="([^"]+)"')


def web_form(conn, seed: dict, session: str, csrf: str) -> str:
    """Open the pledge form as the backer has it on screen when the tier opens; return its idempotency key."""
    headers = {"Cookie": f"sessionid={session}; csrftoken={csrf}"}
    status, raw, _ = _send(conn, "GET", f"/pledges/new/{seed['slug']}/", headers=headers)
    found = _KEY_FIELD.search(raw)
    if status != 200 or not found:
        sys.exit(f"the pledge form did not open for a logged-in backer ({status})")
    return found.group(1).decode()


def web_pledge(conn, seed: dict, session: str, csrf: str, key: str, reward_id: int, amount: int) -> tuple[int, str]:
    fields = {
        "csrfmiddlewaretoken": csrf,
        "reward": reward_id,
        "amount": f"{amount // 100}.{amount % 100:02d}",
        "card_number": CARD,
        "expiry": "12/39",
        "cvc": "123",
        "idempotency_key": key,
    }
    headers = {
        "Cookie": f"sessionid={session}; csrftoken={csrf}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, raw, response = _send(conn, "POST", f"/pledges/new/{seed['slug']}/", urlencode(fields), headers)
    if status == 302 and "/pledges/" in (response.getheader("Location") or ""):
        return status, "held"
    if status == 409 and SOLD_OUT_TEXT in raw.decode(errors="replace"):
        return status, "sold_out"
    return status, "error"


def run_rush(args, port: int, seed: dict) -> tuple[float, list[Answer], dict]:
    """Fire every backer's early-bird pledge at once while the page clients load pages.

    Return (seconds the rush took, the answers, page results {path kind: (latencies, errors)}).
    """
    backers = [("api", token) for token in seed["tokens"]] + [("web", session) for session in seed["sessions"]]
    backers = [backers[i] for i in sorted(range(len(backers)), key=lambda i: (i * 7919) % len(backers))]
    csrf = secrets.token_hex(16)  # 32 characters: a valid CSRF secret, sent as cookie and field
    forms: dict[str, str] = {}
    answers: list[list[Answer]] = [[] for _ in range(args.pledge_clients)]
    barrier = threading.Barrier(args.pledge_clients + args.page_clients + 1)
    rush_over = threading.Event()

    def pledge_client(n: int) -> None:
        conn = _connect(port)
        mine = backers[n :: args.pledge_clients]
        for interface, who in mine:  # the forms are open on every web backer's screen
            if interface == "web":
                forms[who] = web_form(conn, seed, who, csrf)
        barrier.wait()
        for interface, who in mine:
            started = time.perf_counter()
            try:
                if interface == "api":
                    status, outcome = api_pledge(
                        conn, seed, who, f"rush-{who}", seed["early_bird_id"], EARLY_BIRD_PRICE
                    )
                else:
                    status, outcome = web_pledge(
                        conn, seed, who, csrf, forms[who], seed["early_bird_id"], EARLY_BIRD_PRICE
                    )
            except (OSError, http.client.HTTPException) as error:
                status, outcome = type(error).__name__, "error"
                conn.close()
                conn = _connect(port)
            answers[n].append(Answer(interface, status, outcome, time.perf_counter() - started))
        conn.close()

    page_paths = [f"/campaigns/{seed['slug']}/", "/"]
    pages: list[dict] = [{path: ([], 0) for path in page_paths} for _ in range(args.page_clients)]

    def page_client(n: int) -> None:
        conn = _connect(port)
        barrier.wait()
        i = n
        while not rush_over.is_set():
            path = page_paths[i % len(page_paths)]
            i += 1
            started = time.perf_counter()
            try:
                status, _, _ = _send(conn, "GET", path)
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = _connect(port)
            latencies, errors = pages[n][path]
            if status == 200 and not rush_over.is_set():
                latencies.append(time.perf_counter() - started)
            elif status != 200:
                pages[n][path] = (latencies, errors + 1)
        conn.close()

    pledgers = [threading.Thread(target=pledge_client, args=(n,)) for n in range(args.pledge_clients)]
    visitors = [threading.Thread(target=page_client, args=(n,)) for n in range(args.page_clients)]
    for thread in pledgers + visitors:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pledgers:
        thread.join()
    elapsed = time.perf_counter() - started
    rush_over.set()
    for thread in visitors:
        thread.join()
    merged = {path: ([x for p in pages for x in p[path][0]], sum(p[path][1] for p in pages)) for path in page_paths}
    return elapsed, [a for per in answers for a in per], merged


def count_statements(args, seed: dict, log) -> tuple[int | None, int | None]:
    """Return the statements one held pledge and one sold-out answer send, from the server log.

    On a gunicorn of its own (one worker, one thread) started while the server logs every
    statement of this database: an API backer who has pledged before (in the rush) pledges to a
    reward of another campaign (one open pledge per backer per campaign), after three other
    backers warmed the worker up there; then a backer asks for the sold-out early bird again
    under a new key.
    """
    from _common import free_port
    from django.utils import timezone

    from projects.models import Campaign, CampaignStatus, Category, RewardTier

    now = timezone.now()
    other = Campaign.objects.create(
        initiator_id=Campaign.objects.get(pk=seed["campaign_id"]).initiator_id,
        title="Another launch",
        slug=f"rush-count-{time.time_ns()}",
        summary="Counted.",
        description="Where the counted pledge goes. " * 5,
        category=Category.objects.get(slug="bench"),
        goal=10**10,
        status=CampaignStatus.LIVE,
        launched_at=now,
        deadline=now + timedelta(days=30),
        platform_fee_bps=500,
    )
    reward = RewardTier.objects.create(campaign=other, title="Backer", description="Ours.", minimum_amount=4_000)

    def held(answer: tuple[int, str]) -> None:
        if answer[0] != 201:
            sys.exit(f"a counted pledge was answered {answer}")

    counted = []
    with statements_logged(args.database_url) as count:
        port = free_port()
        server = start_gunicorn(port=port, log=log, env=server_env(args), workers=1, threads=1)
        try:
            conn = _connect(port)
            token = seed["tokens"][0]
            for i in range(3):  # the worker's first requests open its connection and warm up
                warm = seed["tokens"][2 + i]
                held(api_pledge(conn, seed, warm, f"warm-{time.time_ns()}-{i}", reward.pk, 4_000, other.pk))
            counted.append(
                count(
                    lambda: held(api_pledge(conn, seed, token, f"count-{time.time_ns()}", reward.pk, 4_000, other.pk))
                )
            )
            late = seed["tokens"][1]
            counted.append(
                count(lambda: api_pledge(conn, seed, late, f"late-{time.time_ns()}", seed["early_bird_id"], 2_500))
            )
            conn.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    return counted[0], counted[1]


def server_env(args) -> dict:
    return {
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "ERROR",
        "DEBUG": "false",
        "CACHE_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        # Every backer is on 127.0.0.1 here: the per-client limits would refuse a crowd from one address.
        "API_THROTTLE_USER": "100000000/min",
        "API_THROTTLE_IP": "100000000/min",
    }


def _ms(values: list[float], fraction: float) -> float:
    return percentile(values, fraction) * 1000


def main() -> None:
    args = parse_args()
    setup_django_on_postgres(args.database_url, benchmark="rush")
    import redis
    from django.db import connection

    from projects.models import Campaign, RewardTier
    from settlement.verification import ledger_verify

    seed_campaigns(args.campaigns)
    seed = seed_rush(args)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    redis.Redis.from_url(args.redis_url).flushdb()  # this benchmark's own Redis database
    from _common import free_port

    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = start_gunicorn(port=port, log=log, env=server_env(args), workers=args.workers, threads=args.threads)
        try:
            reference = reference_lines(port=port, clients=args.page_clients, seconds=args.reference_seconds)
            elapsed, answers, pages = run_rush(args, port, seed)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        connection.close()
        statements, sold_out_statements = count_statements(args, seed, log)
        log.seek(0)
        server_errors = log.read().decode(errors="replace")

    early = RewardTier.objects.get(pk=seed["early_bird_id"])
    campaign = Campaign.objects.get(pk=seed["campaign_id"])
    from pledges.models import Pledge, PledgeStatus

    held_early = Pledge.objects.filter(reward_id=early.pk, status=PledgeStatus.HELD).count()
    # All held pledges: the early birds and the few the statement count added to another tier.
    held_total = sum(
        Pledge.objects.filter(campaign_id=campaign.pk, status=PledgeStatus.HELD).values_list("amount", flat=True)
    )
    held_early_total = sum(
        Pledge.objects.filter(reward_id=early.pk, status=PledgeStatus.HELD).values_list("amount", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    problems = ledger_verify()

    by_status: dict[tuple, int] = {}
    for a in answers:
        by_status[(a.interface, a.status, a.outcome)] = by_status.get((a.interface, a.status, a.outcome), 0) + 1
    held = [a.seconds for a in answers if a.outcome == "held"]
    sold_out = [a.seconds for a in answers if a.outcome == "sold_out"]
    failed = [a for a in answers if a.outcome not in ("held", "sold_out")]
    page_latencies = [x for latencies, _ in pages.values() for x in latencies]
    page_errors = sum(errors for _, errors in pages.values())
    row_rate, row_p95, row_errors = reference["one-row view"]
    copy_rate, copy_p95, copy_errors = reference["page-cache copy"]
    sold_out_p99 = _ms(sold_out, 0.99)
    pages_p95 = _ms(page_latencies, 0.95)

    print(f"database:           {args.campaigns} live campaigns; server gunicorn {args.workers}x{args.threads} gthread")
    print(
        f"rush:               {len(answers)} early-bird pledges from {args.pledge_clients} clients in {elapsed:.1f} s"
    )
    print(f"                    ({len(seed['tokens'])} API backers, {len(seed['sessions'])} web sessions)")
    print(
        f"slots sold:         {held_early} of {args.slots} (tier says {early.claimed_count})   "
        f"(budget exactly {args.slots})"
    )
    for (interface, status, outcome), count in sorted(by_status.items(), key=str):
        print(f"  {interface} {status} {outcome}: {count}")
    print(f"held p50 / p99:     {_ms(held, 0.5):.0f} / {_ms(held, 0.99):.0f} ms")
    print(
        f"sold-out p50 / p99: {_ms(sold_out, 0.5):.0f} / {sold_out_p99:.0f} ms   (budget p99 <= "
        f"{BUDGET_SOLD_OUT_P99_MS} ms; {sold_out_p99 / row_p95:.1f}x the reference p95, budget <= "
        f"{BUDGET_SOLD_OUT_P99_OVER_REFERENCE_P95}x)"
    )
    for path, (latencies, errors) in pages.items():
        print(
            f"page {path:<40} {len(latencies) / elapsed:.0f} req/s, p50 / p95 {_ms(latencies, 0.5):.1f} / "
            f"{_ms(latencies, 0.95):.1f} ms, {errors} errors"
        )
    print(
        f"pages during rush:  {len(page_latencies) / elapsed:.0f} req/s, p95 {pages_p95:.1f} ms   (budget p95 <= "
        f"{BUDGET_PAGES_P95_MS} ms; {pages_p95 / row_p95:.1f}x the reference p95, budget <= "
        f"{BUDGET_PAGES_P95_OVER_REFERENCE_P95}x)"
    )
    print(f"reference one row:  {row_rate:.0f} req/s, p95 {row_p95:.1f} ms, {row_errors} errors (same gunicorn, quiet)")
    print(f"reference copy:     {copy_rate:.0f} req/s, p95 {copy_p95:.1f} ms, {copy_errors} errors")
    expected = held_early * EARLY_BIRD_PRICE
    print(
        f"campaign total:     {campaign.pledged_amount} (its held pledges {held_total}; early birds "
        f"{held_early_total}, expected {expected})"
    )
    print(f"ledger_verify():    {'OK' if not problems else problems[:3]}")
    print(
        f"statements:         {statements} per held pledge (a reward, a backer seen before), "
        f"{sold_out_statements} per sold-out answer (server log)"
    )
    if failed:
        print(f"failures:           {len(failed)}, e.g. {[(a.interface, a.status) for a in failed[:5]]}")
        print(server_errors[-2000:])
    within = (
        held_early == args.slots == early.claimed_count
        and len(sold_out) == len(answers) - args.slots
        and not failed
        and page_errors == 0
        and sold_out_p99 <= BUDGET_SOLD_OUT_P99_MS
        and pages_p95 <= BUDGET_PAGES_P95_MS
        and campaign.pledged_amount == held_total
        and held_early_total == expected
        and not problems
    )
    print("within budget" if within else "OVER BUDGET")
    sys.exit(0 if within else 1)


if __name__ == "__main__":
    main()

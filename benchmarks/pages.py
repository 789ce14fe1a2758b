"""Page benchmark: the campaign page and the discover page under 16 concurrent clients.

Budget, for each page: >= 500 requests/s, p95 <= 30 ms, 0 errors, with 10,000 campaigns and
1,000,000 pledges on PostgreSQL, served by gunicorn on 2 cores. Each page line also prints its
rate and p95 as ratios to the one-row reference line below (issue 17: budgets as ratios, to be
set from a run that meets the absolute budget; figures run by run in benchmarks/README.md).

Each run uses its own PostgreSQL database (``crowdfund_bench_pages`` by default, created and
migrated here). Seeding (not timed, skipped when the database already holds enough) writes
users, live campaigns with three reward tiers each, and held pledges with PostgreSQL ``COPY``,
then sets each campaign's running totals from its pledges, as the pledge service keeps them.
It then starts gunicorn (gthread, persistent database connections) and, per page, runs
``--clients`` threads, each on one keep-alive ``http.client`` connection, for ``--seconds``
after a short warm-up: the campaign page of a random campaign, or the discover page (first
page with its sections, a later page, a category, a sort). Campaigns are picked two ways: all
equally often (the worst case for the page cache: almost every page is rendered afresh), and
skewed the way visits to web pages are (Zipf, exponent ``--zipf``, by number of backers: a
launch-day rush). The workers share a Redis cache as in production (``--cache-url``), and
logged-out visitors get pages rendered at most ``--page-cache-seconds`` earlier.

Two reference lines run first, in the same run and through the same gunicorn (issue 17: the
machine's speed swings about 2x between runs, so each page is also stated as a ratio to them):
a minimal Django view that reads one row (``/bench/row/<pk>`` of a random campaign, mounted by
``benchmarks/pages_reference.py`` beside the site's own URLs), and the page cache's copy path
(every client asks for the same campaign page, so all but the first are served from its copy).
The one-row view is measured again after the pages, and the ratios use the mean of the two.
Exit status 0 only when every page line is within its absolute budget.

    .venv/bin/python benchmarks/pages.py [--campaigns 10000] [--pledges 1000000] [--clients 16]
                                         [--seconds 20] [--workers 2] [--threads 4] [--zipf 1.0]
                                         [--cache-url URL] [--page-cache-seconds 10] [--database-url URL]
                                         [--lines row,copy,uniform,skewed,discover]
"""

import argparse
import http.client
import io
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from _common import BASE_DIR, free_port, setup_django_on_postgres

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crowdfund_bench_pages"
BUDGET_REQUESTS_PER_SECOND = 500
BUDGET_P95_MS = 30
WARM_UP_SECONDS = 3
BACKERS = 50_000
INITIATORS = 2_000
# The lines a run measures, by short name; the two references first, so each page line can be
# read as a ratio to them.
LINES = {
    "row": "reference: one-row view",
    "row-after": "reference: one-row, again",
    "copy": "reference: page-cache copy",
    "uniform": "campaign page, uniform",
    "skewed": "campaign page, skewed",
    "discover": "discover page",
}
REFERENCE_LINES = ("row", "copy", "row-after")
# What --lines may name; "row-after" follows by itself whenever "row" and another line run.
CHOSEN_LINES = [name for name in LINES if name != "row-after"]
REWARD_TIERS = (("Thanks", 1_000, None), ("Early bird", 2_500, 100), ("Deluxe", 10_000, 20))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--pledges", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per page")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--zipf", type=float, default=1.0, help="exponent of the skewed campaign popularity")
    parser.add_argument(
        "--cache-url",
        default="redis://127.0.0.1:6379/9",
        help="Django cache shared by the workers, as in production (emptied first); locmemcache:// for none",
    )
    parser.add_argument("--page-cache-seconds", type=int, default=10, help="PAGE_CACHE_SECONDS; 0 renders every page")
    parser.add_argument("--page-cache-max-seconds", type=int, default=60, help="PAGE_CACHE_MAX_SECONDS")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL), help="PostgreSQL only"
    )
    parser.add_argument(
        "--lines",
        default=",".join(CHOSEN_LINES),
        help=f"which lines to run, in this order, from {','.join(CHOSEN_LINES)}",
    )
    return parser.parse_args()


def configure_django(args: argparse.Namespace) -> None:
    setup_django_on_postgres(args.database_url, benchmark="page")


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed(args: argparse.Namespace) -> None:
    """Bulk-write users, live campaigns with rewards, and held pledges, unless already there."""
    from datetime import timedelta

    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.db import connection, transaction
    from django.utils import timezone

    from pledges.models import Pledge
    from projects.models import Campaign, Category

    live = Campaign.objects.open_for_pledges().count()
    if live >= args.campaigns and Pledge.objects.count() >= args.pledges:
        print(f"seed: reusing {live} live campaigns and {Pledge.objects.count()} pledges")
        return
    started = time.monotonic()
    rng = random.Random(7)
    now = timezone.now()
    run = int(time.time())
    password = UNUSABLE_PASSWORD_PREFIX + "bench"
    categories = list(Category.objects.values_list("pk", flat=True))
    words = ["solar", "garden", "robot", "tea", "kettle", "board", "game", "comic", "album", "film", "bike", "lamp"]
    with transaction.atomic(), connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        user_columns = ["password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff"]
        user_columns += [
            "is_active",
            "date_joined",
            "display_name",
            "bio",
            "preferred_language",
            "email_verified",
            "avatar",
        ]
        total_users = INITIATORS + BACKERS
        _copy(
            cursor,
            "accounts_user",
            user_columns,
            (
                (
                    password,
                    False,
                    f"bench-{run}-{i}",
                    "",
                    "",
                    f"u{i}@bench.local",
                    False,
                    True,
                    now,
                    "",
                    "",
                    "en",
                    True,
                    "{}",
                )
                for i in range(total_users)
            ),
        )
        cursor.execute("SELECT id FROM accounts_user WHERE username LIKE %s ORDER BY id", [f"bench-{run}-%"])
        user_ids = [row[0] for row in cursor.fetchall()]
        initiators, backers = user_ids[:INITIATORS], user_ids[INITIATORS:]

        campaign_columns = ["initiator_id", "title", "slug", "summary", "description", "category_id", "currency"]
        campaign_columns += ["goal", "funding_model", "status", "duration_days", "launch_on_approval", "launched_at"]
        campaign_columns += ["deadline", "review_feedback", "pledged_amount", "backer_count", "platform_fee_bps"]
        campaign_columns += ["settlement_outcome", "created_at", "updated_at"]
        campaign_columns += ["description_html", "faq", "faq_html", "risks", "risks_html", "cover", "gallery"]

        def campaign_row(i: int):
            launched = now - timedelta(days=rng.uniform(0, 29), minutes=i % 60)
            title = f"{rng.choice(words).title()} {rng.choice(words)} {i}"
            story = f"The story of the {title}, told in a few sentences. " * 6
            return (
                initiators[i % INITIATORS],
                title,
                f"bench-{run}-{i}",
                f"A {rng.choice(words)} for everyone who likes {rng.choice(words)}.",
                story,
                categories[i % len(categories)],
                "USD",
                rng.choice([50_000, 100_000, 500_000, 2_000_000]),
                "all_or_nothing" if i % 4 else "flexible",
                "live",
                30,
                True,
                launched,
                launched + timedelta(days=30),
                "",
                0,
                0,
                500,
                "",
                launched,
                now,
                f"<p>{story}</p>",  # what projects.markdown renders on save, for a one-paragraph story
                "",
                "",
                "",
                "",
                "{}",
                "[]",
            )

        _copy(cursor, "projects_campaign", campaign_columns, (campaign_row(i) for i in range(args.campaigns)))
        cursor.execute("SELECT id FROM projects_campaign WHERE slug LIKE %s ORDER BY id", [f"bench-{run}-%"])
        campaign_ids = [row[0] for row in cursor.fetchall()]
        reward_columns = ["campaign_id", "title", "description", "minimum_amount", "quantity_limit", "claimed_count"]
        reward_columns += ["image", "price_steps"]
        _copy(
            cursor,
            "projects_rewardtier",
            reward_columns,
            (
                (cid, title, "Something nice.", minimum, limit, 0, "{}", "[]")
                for cid in campaign_ids
                for title, minimum, limit in (
                    ("Thanks", 1_000, None),
                    ("Early bird", 2_500, 100),
                    ("Deluxe", 10_000, 20),
                )
            ),
        )
        pledge_columns = ["backer_id", "campaign_id", "amount", "currency", "status", "idempotency_key"]
        pledge_columns += ["request_fingerprint", "payment_reference", "failure_code", "failure_message"]
        pledge_columns += ["created_at", "held_at"]
        # Popularity is skewed, as on a real platform: a few campaigns get most pledges.
        weights = [1 / (rank + 10) for rank in range(len(campaign_ids))]
        chosen = rng.choices(campaign_ids, weights=weights, k=args.pledges)
        # One open pledge per backer per campaign: each campaign's pledges come from distinct
        # backers, in turn from an offset of its own (the most popular gets under BACKERS).
        taken: dict[int, int] = {}

        def backer_for(campaign_id: int) -> int:
            k = taken.get(campaign_id, 0)
            taken[campaign_id] = k + 1
            if k >= len(backers):
                raise SystemExit(f"campaign {campaign_id} would need more than {len(backers)} backers")
            return backers[(campaign_id * 7919 + k) % len(backers)]

        _copy(
            cursor,
            "pledges_pledge",
            pledge_columns,
            (
                (
                    backer_for(chosen[i]),
                    chosen[i],
                    1_000 + (i % 50) * 100,
                    "USD",
                    "held",
                    f"seed-{run}-{i}",
                    "",
                    f"seed_{i}",
                    "",
                    "",
                    now - timedelta(seconds=i % 2_000_000),
                    now - timedelta(seconds=i % 2_000_000),
                )
                for i in range(args.pledges)
            ),
        )
        cursor.execute(
            """
            UPDATE projects_campaign c SET pledged_amount = t.amount, backer_count = t.backers
            FROM (SELECT campaign_id, SUM(amount) AS amount, COUNT(DISTINCT backer_id) AS backers
                  FROM pledges_pledge WHERE status = 'held' GROUP BY campaign_id) t
            WHERE t.campaign_id = c.id
            """
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seed: {args.campaigns} campaigns, {args.pledges} pledges in {time.monotonic() - started:.0f} s")


# What issue 15 asks the campaign page to carry within the budget: a cover, a gallery of 10 and a
# story written in Markdown (kept rendered and sanitised on the row, as projects.markdown stores it).
GALLERY_SIZE = 10
MARKDOWN_STORY_HTML = (
    "<h2>Why we are making it</h2><p>We have been building this for <em>two years</em> in a small workshop, "
    "and now it is ready for more people than our friends.</p><ul><li>Made locally, from parts you can repair"
    "</li><li>Shipped in recycled packaging</li><li>Updates every month until it ships</li></ul>"
    '<p>Read more on <a href="https://example.org/our-story" rel="nofollow ugc noopener">our workshop\'s '
    "page</a>.</p>"
)


def seed_pictures(args: argparse.Namespace) -> None:
    """Give every campaign without a cover a cover, a 10-picture gallery and a Markdown story (one UPDATE).

    The descriptors are what ``crowdfund_site.images.image_store`` keeps on the row (no files are
    written: pages only build their URLs). Idempotent, so a database seeded before this step gets it too.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE projects_campaign SET
                cover = jsonb_build_object('key', 'bench/covers/' || id, 'widths', '[400, 800, 1600]'::jsonb,
                                           'width', 1600, 'height', 900, 'alt', 'Cover of ' || title),
                gallery = (SELECT jsonb_agg(jsonb_build_object(
                               'key', 'bench/gallery/' || id || '-' || n, 'widths', '[400, 800, 1600]'::jsonb,
                               'width', 1600, 'height', 1067, 'alt', 'Picture ' || n || ' of ' || title))
                           FROM generate_series(1, %s) AS n),
                description_html = %s || description_html
            WHERE cover = '{}'::jsonb
            """,
            [GALLERY_SIZE, MARKDOWN_STORY_HTML],
        )
        if cursor.rowcount:
            print(f"seed: a cover, {GALLERY_SIZE} gallery pictures and a Markdown story, {cursor.rowcount} campaigns")


def start_gunicorn(args: argparse.Namespace, port: int, log) -> subprocess.Popen:
    env = {**os.environ, "CONN_MAX_AGE": "600", "LOG_LEVEL": "ERROR", "DEBUG": "false", "CACHE_URL": args.cache_url}
    env["PAGE_CACHE_SECONDS"] = str(args.page_cache_seconds)
    env["PAGE_CACHE_MAX_SECONDS"] = str(args.page_cache_max_seconds)
    # The site's settings and URLs, plus the one-row reference view (benchmarks/pages_reference.py).
    env["DJANGO_SETTINGS_MODULE"] = "pages_reference"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BASE_DIR / "benchmarks"), env.get("PYTHONPATH")]))
    command = [str(Path(sys.executable).with_name("gunicorn")), "crowdfund_site.wsgi", "-b", f"127.0.0.1:{port}"]
    command += ["-w", str(args.workers), "-k", "gthread", "--threads", str(args.threads), "--keep-alive", "30"]
    command += ["--log-level", "error", "--backlog", "2048"]
    server = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=log)
    give_up_at = time.monotonic() + 60
    while time.monotonic() < give_up_at:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("gunicorn did not start")


def run_clients(args, port: int, paths: list[str], weights: list[float] | None) -> tuple[float, list[float], dict]:
    """GET random ``paths`` from ``args.clients`` threads; return (seconds, latencies, errors by kind).

    ``weights`` (cumulative) skews the choice; None picks every path equally often.
    """
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    errors: list[dict] = [{} for _ in range(args.clients)]
    stop = threading.Event()
    measuring = threading.Event()

    def client(n: int) -> None:
        rng = random.Random(n)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            path = rng.choices(paths, cum_weights=weights)[0] if weights else rng.choice(paths)
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            took = time.perf_counter() - started
            if measuring.is_set():
                if status == 200:
                    latencies[n].append(took)
                else:
                    errors[n][status] = errors[n].get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    time.sleep(WARM_UP_SECONDS)
    measuring.set()
    started = time.monotonic()
    time.sleep(args.seconds)
    measuring.clear()
    elapsed = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join()
    merged: dict = {}
    for found in errors:
        for kind, count in found.items():
            merged[kind] = merged.get(kind, 0) + count
    return elapsed, [value for values in latencies for value in values], merged


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def page_paths(args: argparse.Namespace) -> dict[str, tuple[list[str], list[float] | None]]:
    """Return, per line's short name, the paths its clients request and their cumulative weights (None: uniform)."""
    from projects.models import Campaign, Category

    # Most backed first: the skewed pattern sends most visitors to the most popular campaigns.
    live = Campaign.objects.open_for_pledges().order_by("-backer_count", "id")
    slugs = list(live.values_list("slug", flat=True)[:50_000])
    ids = list(live.values_list("pk", flat=True)[:50_000])
    categories = list(Category.objects.values_list("slug", flat=True))
    discover = ["/", "/?page=2", "/?page=20", "/?sort=newest", "/?sort=most_backed"]
    discover += [f"/?category={slug}" for slug in categories]
    campaign_pages = [f"/campaigns/{slug}/" for slug in slugs]
    paths = {
        "row": ([f"/bench/row/{pk}" for pk in ids], None),
        "copy": (campaign_pages[:1], None),
        "uniform": (campaign_pages, None),
        "skewed": (campaign_pages, zipf_weights(len(campaign_pages), args.zipf)),
        "discover": (discover, None),
    }
    chosen = {name: paths[name] for name in args.lines.split(",")}
    if "row" in chosen and len(chosen) > 1:
        # Measured again at the end: the machine's load moves during a run, and the ratios use
        # the mean of the two, so the pages are judged against the machine as it was around them.
        chosen["row-after"] = paths["row"]
    return chosen


def zipf_weights(count: int, exponent: float) -> list[float]:
    """Cumulative weights of a Zipf law: the page of rank r is visited in proportion to 1 / r^exponent.

    Visits to web pages follow it roughly with an exponent near 1: with 10,000 campaigns the most
    popular one gets about a tenth of the visits and the top 100 about half.
    """
    total, cumulative = 0.0, []
    for rank in range(1, count + 1):
        total += 1 / rank**exponent
        cumulative.append(total)
    return cumulative


def empty_cache(args: argparse.Namespace) -> None:
    if args.cache_url.startswith("redis://"):
        import redis

        redis.Redis.from_url(args.cache_url).flushdb()


def main() -> None:
    args = parse_args()
    unknown = set(args.lines.split(",")) - set(CHOSEN_LINES)
    if unknown:
        sys.exit(f"unknown lines: {', '.join(sorted(unknown))} (choose from {', '.join(CHOSEN_LINES)})")
    configure_django(args)
    seed(args)
    seed_pictures(args)
    paths = page_paths(args)
    port = free_port()
    results = {}
    with tempfile.TemporaryFile() as log:
        server = start_gunicorn(args, port, log)
        try:
            for name, (urls, weights) in paths.items():
                empty_cache(args)  # each line starts cold: no pages kept from an earlier line or run
                results[name] = run_clients(args, port, urls, weights)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            log.seek(0)
            tail = io.TextIOWrapper(log, errors="replace").read()[-2000:]
    print(f"data:    {args.campaigns} live campaigns, {args.pledges} pledges (PostgreSQL)")
    print(f"server:  gunicorn {args.workers} workers x {args.threads} threads (gthread), {args.clients} clients")
    print(
        f"cache:   {args.cache_url}, emptied before each line; logged-out visitors get copies up to "
        f"{args.page_cache_seconds} s old, {args.page_cache_max_seconds} s while a campaign's figures stand still"
    )
    print(f"load:    {os.getloadavg()[0]:.1f} (1-minute load average at the end of the run)")
    measured = {name: summary(*result) for name, result in results.items()}
    row = measured.get("row")
    if row is not None and "row-after" in measured:
        after = measured["row-after"]
        row = Line(
            rate=(row.rate + after.rate) / 2, p50=(row.p50 + after.p50) / 2, p95=(row.p95 + after.p95) / 2, errors=0
        )
    within = True
    for name, line in measured.items():
        verdict = ""
        if name not in REFERENCE_LINES:
            ok = line.rate >= BUDGET_REQUESTS_PER_SECOND and line.p95 <= BUDGET_P95_MS and line.errors == 0
            within &= ok
            verdict = "ok" if ok else "OVER BUDGET"
        ratios = ""
        if row is not None and not name.startswith("row"):
            ratios = f"  = {line.rate / row.rate:5.2f} x row rate, p95 {line.p95 / row.p95:5.2f} x row p95"
        print(
            f"{LINES[name]:27s} {line.rate:7.0f} req/s   p50 {line.p50:6.1f} ms   p95 {line.p95:6.1f} ms   "
            f"errors {line.errors} {line.error_kinds or ''}{ratios}  {verdict}"
        )
    if not within and tail.strip():
        print("gunicorn log tail:\n" + tail)
    print("within budget" if within else "OVER BUDGET")
    sys.exit(0 if within else 1)


@dataclass(frozen=True)
class Line:
    rate: float
    p50: float
    p95: float
    errors: int
    error_kinds: dict | None = None


def summary(elapsed: float, latencies: list[float], errors: dict) -> Line:
    return Line(
        rate=len(latencies) / elapsed,
        p50=statistics.median(latencies) * 1000 if latencies else float("nan"),
        p95=percentile(latencies, 0.95) * 1000,
        errors=sum(errors.values()),
        error_kinds=errors,
    )


if __name__ == "__main__":
    main()

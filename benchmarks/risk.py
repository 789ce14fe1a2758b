"""Risk benchmark: review scores, funding forecasts and recommendations at platform scale.

Budget (issue 6): score 10,000 campaigns in <= 1 s; forecast <= 2 ms per campaign;
recommendations for one backer over 10,000 live campaigns <= 50 ms.

It seeds its own database (a temporary SQLite file by default; ``--database-url postgres://...``
for PostgreSQL, created if missing) with N live campaigns (story, 0-6 reward tiers, initiators with
a history of closed campaigns), one backer with pledges in a few categories, and campaigns with a
pledge history for the forecasts. Then it times, taking the median of ``--repeat`` runs:

- review scores: ``campaign_risk_scores`` for all N campaigns, from the database (features read in
  bulk, one matrix product), and the numpy part alone; also ``risk_assess_campaigns``, which adds
  the reasons in words and stores N assessments;
- forecast: ``forecast_for_campaign`` per campaign with 300 pledges (query + fit + bootstrap), and
  the numpy part alone;
- recommendations: ranking N live campaigns for one backer (``recommendations_rank``, the pool of
  live campaigns already loaded, as a page serving many backers would), and ``recommendations_for``
  end to end, loading the pool from the database each time.

    .venv/bin/python benchmarks/risk.py [--campaigns 10000] [--repeat 7] [--database-url URL]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
# One BLAS thread per process, as web and worker processes should run (they scale by process
# count): the models' matrices are small, and a thread pool per process only fights for cores.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
BUDGET_SCORE_SECONDS = 1.0
BUDGET_FORECAST_MS = 2.0
BUDGET_RECOMMEND_MS = 50.0
FORECAST_CAMPAIGNS = 20
FORECAST_PLEDGES = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=10_000, help="live campaigns (default 10,000)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement; medians are reported")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_RISK_DATABASE_URL"),
        help="default: a temporary SQLite file; postgres://... is created if missing",
    )
    return parser.parse_args()


def configure_django(database_url: str | None) -> None:
    """Point this process at the benchmark database, create its tables, and set Django up."""
    if database_url is None:
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix='risk-bench-')}/bench.sqlite3"
    elif database_url.startswith(("postgres://", "postgresql://")):
        create_postgres_database(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-insecure-key")
    os.environ["DJANGO_SETTINGS_MODULE"] = "crowdfund_site.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Run as a script, this file's folder comes first on sys.path and would shadow the risk app.
    sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"database: {database_url}")


def create_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(n_campaigns: int):
    """Create the campaigns, initiators, history, backer and pledge histories; return what is timed."""
    from datetime import timedelta

    import numpy as np
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from pledges.models import Pledge, PledgeStatus
    from projects.models import Campaign, CampaignStatus, Category, RewardTier

    rng = np.random.default_rng(2026)
    now = timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        categories = [
            Category.objects.get_or_create(slug=f"bench-{i}", defaults={"name": f"Bench category {i}"})[0]
            for i in range(12)
        ]
        n_initiators = max(n_campaigns // 5, 10)
        users = User.objects.bulk_create(
            User(
                username=f"bench-{i}",
                email=f"bench-{i}@example.com",
                password="!",
                email_verified=bool(rng.random() < 0.6),
                date_joined=now - timedelta(days=int(rng.integers(0, 1500))),
            )
            for i in range(n_initiators + 1_000)
        )
        initiators, backers = users[:n_initiators], users[n_initiators:]

        def campaign(i: int, **fields) -> Campaign:
            return Campaign(
                initiator=initiators[int(rng.integers(0, n_initiators))],
                title=f"Bench campaign {i}",
                slug=f"bench-campaign-{i}",
                summary="A benchmark campaign.",
                description="x" * int(rng.integers(50, 8_000)),
                category=categories[int(rng.integers(0, len(categories)))],
                goal=int(np.exp(rng.normal(np.log(500_000), 1.0))),
                duration_days=int(rng.integers(10, 61)),
                **fields,
            )

        closed = Campaign.objects.bulk_create(
            campaign(
                n_campaigns + i,
                status=CampaignStatus.SUCCEEDED if rng.random() < 0.45 else CampaignStatus.FAILED,
                launched_at=now - timedelta(days=int(rng.integers(40, 700))),
                deadline=now - timedelta(days=int(rng.integers(5, 39))),
                submitted_at=now - timedelta(days=700),
                pledged_amount=int(rng.integers(0, 1_500_000)),
            )
            for i in range(n_campaigns // 10)
        )
        live = Campaign.objects.bulk_create(
            campaign(
                i,
                status=CampaignStatus.LIVE,
                launched_at=now - timedelta(days=int(rng.integers(0, 10))),
                deadline=now + timedelta(hours=int(rng.integers(2, 24 * 50))),
                submitted_at=now - timedelta(days=12),
                pledged_amount=int(rng.integers(0, 800_000)),
                backer_count=int(rng.integers(0, 600)),
            )
            for i in range(n_campaigns)
        )
        RewardTier.objects.bulk_create(
            RewardTier(
                campaign=c,
                title=f"Tier {t}",
                minimum_amount=1_000 * (t + 1),
                estimated_delivery=(now + timedelta(days=int(rng.integers(20, 400)))).date(),
            )
            for c in live
            for t in range(int(rng.integers(0, 7)))
        )
        backer = backers[0]
        backed = [c for c in live if c.category_id in {categories[0].pk, categories[1].pk}][:30]
        pledge_rows = [
            Pledge(
                backer=backer,
                campaign=c,
                amount=int(rng.integers(1_000, 10_000)),
                currency="USD",
                status=PledgeStatus.HELD,
                idempotency_key=f"bench-backer-{c.pk}",
                request_fingerprint="bench",
                created_at=now,
                held_at=now,
            )
            for c in backed
        ]
        forecast_campaigns = live[-FORECAST_CAMPAIGNS:]
        for c in forecast_campaigns:
            Campaign.objects.filter(pk=c.pk).update(
                launched_at=now - timedelta(days=10), deadline=now + timedelta(days=20)
            )
            amplitude, rate = float(rng.uniform(2e5, 2e6)), float(rng.uniform(0.03, 0.4))
            t = np.sort(rng.uniform(0, 10, FORECAST_PLEDGES))
            amounts = np.maximum(np.diff(np.round(amplitude * -np.expm1(-rate * t)), prepend=0), 100)
            launched = now - timedelta(days=10)
            at = [launched + timedelta(days=float(d)) for d in t]
            pledge_rows += [
                Pledge(
                    backer=backers[1 + j % (len(backers) - 1)],
                    campaign=c,
                    amount=int(amounts[j]),
                    currency="USD",
                    status=PledgeStatus.HELD,
                    idempotency_key=f"bench-{c.pk}-{j}",
                    request_fingerprint="bench",
                    created_at=at[j],
                    held_at=at[j],
                )
                for j in range(FORECAST_PLEDGES)
            ]
        Pledge.objects.bulk_create(pledge_rows, batch_size=2_000)
    print(
        f"seeded {len(live):,} live and {len(closed):,} closed campaigns, {RewardTier.objects.count():,} reward "
        f"tiers, {len(pledge_rows):,} pledges in {time.perf_counter() - started:.1f} s"
    )
    return [c.pk for c in live], backer, [c.pk for c in forecast_campaigns]


def timed(fn, repeat: int) -> list[tuple[float, float]]:
    """Run ``fn`` ``repeat`` times; return (wall, CPU of this process) seconds of each run."""
    times = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def report(label: str, runs: list[tuple[float, float]], *, unit: str = "ms", per: int = 1, budget=None) -> None:
    """Print the median wall time (min, max) and the median CPU time of this process, per item."""
    scale = (1_000 if unit == "ms" else 1) / per
    wall = [w * scale for w, _ in runs]
    cpu = statistics.median(c for _, c in runs) * scale
    value = statistics.median(wall)
    verdict = f"  budget {budget:g} {unit}: {'OK' if value <= budget else 'OVER'}" if budget is not None else ""
    print(f"  {label:<66} {value:8.2f} {unit} (min {min(wall):.2f}, max {max(wall):.2f}; cpu {cpu:.2f}){verdict}")


def main() -> None:
    args = parse_args()
    configure_django(args.database_url)
    import numpy as np
    from django.db import connection

    from projects.models import Campaign
    from risk import review
    from risk.algorithms import forecast_saturating
    from risk.selectors import (
        backer_profile_for,
        campaign_risk_scores,
        forecast_for_campaign,
        live_campaign_pool,
        live_campaign_pool_cached,
        recommendations_for,
        recommendations_rank,
    )
    from risk.services import risk_assess_campaigns

    live_ids, backer, forecast_ids = seed(args.campaigns)
    n = len(live_ids)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nmedians of {args.repeat} runs on {connection.vendor}, {os.cpu_count()} CPUs, load average {load}")

    print("Review risk score")
    report(
        f"score {n:,} campaigns by id (features from the database + model)",
        timed(lambda: campaign_risk_scores(live_ids), args.repeat),
        unit="s",
        budget=BUDGET_SCORE_SECONDS,
    )
    live = Campaign.objects.filter(status="live")
    report(
        f"score {n:,} campaigns given as a queryset (one subquery)",
        timed(lambda: campaign_risk_scores(live), args.repeat),
        unit="s",
        budget=BUDGET_SCORE_SECONDS,
    )
    X = campaign_risk_scores(live_ids).features.matrix
    model = review.prior_model()
    report(
        f"  numpy alone: probabilities + contributions for {n:,}",
        timed(lambda: (model.predict(X), model.contributions(X)), args.repeat),
    )
    report(
        f"assess and store {n:,} (+ reasons in words, bulk insert; 1 run)",
        timed(lambda: risk_assess_campaigns(campaign_ids=live_ids), 1),
        unit="s",
    )

    print("Funding forecast")
    campaigns = list(Campaign.objects.filter(pk__in=forecast_ids))
    report(
        f"forecast_for_campaign, {FORECAST_PLEDGES} pledges (query + fit + bootstrap)",
        timed(lambda: [forecast_for_campaign(c) for c in campaigns], args.repeat),
        per=len(campaigns),
        budget=BUDGET_FORECAST_MS,
    )
    rng = np.random.default_rng(0)
    t = np.linspace(10 / 48, 10, 48)
    y = 500_000 * -np.expm1(-0.15 * t) + rng.normal(0, 10_000, t.size)
    cone = np.linspace(10, 30, 12)
    report(
        "  numpy alone: fit + 200 bootstrap refits + 12-point cone",
        timed(lambda: [forecast_saturating(t, y, cone, rng=rng) for _ in range(100)], args.repeat),
        per=100,
    )

    print("Recommendations")
    pool = live_campaign_pool()
    profile = backer_profile_for(backer)
    report(
        f"rank {len(pool):,} live campaigns for one backer (pool in memory)",
        timed(lambda: recommendations_rank(profile, pool, limit=10), args.repeat * 5),
        budget=BUDGET_RECOMMEND_MS,
    )
    report(
        "recommendations_for(backer, pool=pool): + profile, 10 campaigns",
        timed(lambda: recommendations_for(backer, 10, pool=pool), args.repeat),
    )
    report("load the pool of live campaigns with their latest risk", timed(live_campaign_pool, args.repeat))
    live_campaign_pool_cached()
    report(
        "recommendations_for(backer, pool=live_campaign_pool_cached())",
        timed(lambda: recommendations_for(backer, 10, pool=live_campaign_pool_cached()), args.repeat),
        budget=BUDGET_RECOMMEND_MS,
    )
    report(
        "recommendations_for(backer), pool loaded from the database",
        timed(lambda: recommendations_for(backer, 10), args.repeat),
    )
    top = recommendations_for(backer, 3, pool=pool)
    print("  top 3:", "; ".join(f"{r.campaign.title} ({r.reason})" for r in top))
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Matching allocation benchmark: quadratic funding of a large round, in memory.

Budget (issue 14): quadratic allocation (with the per-campaign cap and its redistribution) of
100,000 contributions over 1,000 campaigns in <= 1 s.

    .venv/bin/python benchmarks/matching.py [--contributions 100000] [--campaigns 1000] [--repeat 7]
    .venv/bin/python benchmarks/matching.py --finalise [--database-url URL]

The allocation is pure (``matching.allocation``): no database is touched, so none is set up.
The live estimate is timed as it was (four whole allocations) and as it is (the round's
standing, then one estimate from it) in the same run. ``--finalise`` instead seeds a database
(a temporary SQLite file by default, or the PostgreSQL database given, dropped and created
afresh) with that many held pledges spread evenly over the campaigns, one backer each, times
live estimates through the database, then ending the round (reading the pledges, allocating,
writing the allocation rows) and paying it (one ledger transaction into every campaign's escrow).
Contributions: 30,000 backers, each contribution to a campaign drawn with a skew (a few
popular campaigns, a long tail), amounts log-normal around 25.00 with some under the 1.00
minimum, one campaign in ten with its initiator among the givers. Prints the median of
``--repeat`` runs with min and max, and the process CPU time per run.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from matching.allocation import (
    Contributions,
    default_quadratic_cap,
    fixed_ratio,
    pro_rata,
    quadratic,
)

POOL = 10_000_000  # 100,000.00


def make_round(n_contributions: int, n_campaigns: int, seed: int = 14) -> tuple[Contributions, dict]:
    rng = np.random.default_rng(seed)
    popularity = rng.zipf(1.6, n_campaigns).astype(np.float64)
    popularity /= popularity.sum()
    campaign = rng.choice(n_campaigns, size=n_contributions, p=popularity).astype(np.int64) + 1
    backer = rng.integers(1, 30_001, size=n_contributions, dtype=np.int64)
    amount = np.maximum(1, rng.lognormal(np.log(2_500), 1.0, size=n_contributions)).astype(np.int64)
    sequence = np.arange(n_contributions, dtype=np.int64)
    # One campaign in ten is backed by its initiator (backer id = campaign id + 100,000).
    initiators = {int(c): {int(c) + 100_000} for c in range(1, n_campaigns + 1, 10)}
    own = np.isin(campaign, list(initiators))
    own_rows = rng.random(n_contributions) < 0.02
    backer = np.where(own & own_rows, campaign + 100_000, backer)
    return Contributions(campaign, backer, amount, sequence), initiators


def measure(label: str, run, repeat: int) -> None:
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    assert result.allocated <= result.pool
    print(
        f"{label}: {statistics.median(walls) * 1000:.1f} ms "
        f"[{min(walls) * 1000:.1f} - {max(walls) * 1000:.1f}] (cpu {statistics.median(cpus) * 1000:.1f} ms); "
        f"{len(result.allocations)} campaigns matched, {result.left} left"
    )


def live_estimate(contributions: Contributions, initiators: dict, cap: int, repeat: int) -> None:
    """Time the live estimate's work as it was (four whole allocations) and as it is, in the same run.

    As it is (``matching.selectors.match_estimates``): the round's standing, one weight per
    campaign now and with every contribution repeated, is computed by beat once a minute; each
    estimate reads it from the cache and the campaign given to from the database as one row per
    backer, then splits the pool twice per scenario. Timed here without the database: the
    standing's computation, and the estimate for the most backed campaign and for a median one.
    """
    os.environ.setdefault("SECRET_KEY", "benchmark-only-insecure-key")
    os.environ["DJANGO_SETTINGS_MODULE"] = "crowdfund_site.settings"
    import django

    django.setup()
    from matching.models import Pool, PoolMode
    from matching.selectors import gift_estimate, standing_of

    c = contributions

    def with_gift(rows: Contributions) -> Contributions:
        return Contributions(
            np.append(rows.campaign, 1),
            np.append(rows.backer, 10**9),
            np.append(rows.amount, 1_000),
            np.append(rows.sequence, 10**12),
        )

    doubled = Contributions(
        np.concatenate([c.campaign, c.campaign]),
        np.concatenate([c.backer, c.backer + 10**6]),
        np.concatenate([c.amount, c.amount]),
        np.concatenate([c.sequence, c.sequence + 10**6]),
    )

    def old_estimate():
        for rows in (contributions, with_gift(contributions), doubled, with_gift(doubled)):
            result = quadratic(pool=POOL, contributions=rows, per_campaign_cap=cap, excluded=initiators)
        return result

    measure("live estimate as it was: four whole allocations (no database)", old_estimate, repeat)
    pool = Pool(amount=POOL, mode=PoolMode.QUADRATIC, per_campaign_cap=cap, minimum_contribution=100)
    flat = {cid: next(iter(backers)) for cid, backers in initiators.items()}
    measure_plain(
        "live estimate, the standing (beat, once a minute)",
        lambda: standing_of(pool=pool, contributions=contributions, initiators=flat),
        repeat,
    )
    standing = standing_of(pool=pool, contributions=contributions, initiators=flat)
    counts = np.bincount(c.campaign)
    for label, campaign_id in (
        ("most backed", int(counts.argmax())),
        ("median", int(np.argsort(counts)[len(counts) // 2])),
    ):
        counted = (c.campaign == campaign_id) & (c.amount >= 100) & (c.backer != flat.get(campaign_id, -1))
        backers, inverse = np.unique(c.backer[counted], return_inverse=True)
        totals = np.zeros(len(backers), dtype=np.int64)
        np.add.at(totals, inverse, c.amount[counted])
        # What the database hands over: one row per backer of the campaign.
        mine = Contributions(np.full(len(backers), campaign_id), backers, totals, np.zeros(len(backers), np.int64))
        measure_plain(
            f"live estimate as it is, {label} campaign ({len(backers):,} backers)",
            lambda mine=mine, campaign_id=campaign_id: gift_estimate(
                pool=pool,
                standing=standing,
                mine=mine,
                campaign_id=campaign_id,
                initiator_id=flat.get(campaign_id, -2),
                giver=10**9,
                amount=1_000,
            ),
            repeat,
        )


def measure_plain(label: str, run, repeat: int) -> None:
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print(
        f"{label}: {statistics.median(walls) * 1000:.2f} ms "
        f"[{min(walls) * 1000:.2f} - {max(walls) * 1000:.2f}] (cpu {statistics.median(cpus) * 1000:.2f} ms)"
    )


def finalise(n_contributions: int, n_campaigns: int, database_url: str | None) -> None:
    import tempfile

    if database_url is None:
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix='matching-bench-')}/bench.sqlite3"
    elif database_url.startswith(("postgres://", "postgresql://")):
        import psycopg
        from _common import create_database

        parts = database_url.rsplit("/", 1)
        with psycopg.connect(parts[0].replace("postgres://", "postgresql://") + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{parts[1]}"')
        create_database(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-insecure-key")
    os.environ["DJANGO_SETTINGS_MODULE"] = "crowdfund_site.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from matching.models import SPONSORS_GROUP, Allocation, PoolMode
    from matching.services import pool_create, pool_fund, round_create, round_end, round_pay, round_publish
    from pledges.testing import held_pledges_create_bulk
    from projects.models import Campaign, CampaignStatus, Category
    from settlement.verification import ledger_verify

    call_command("migrate", verbosity=0)
    print(f"database: {database_url}")
    started = time.perf_counter()
    now = timezone.now()
    initiator = User.objects.create(username="bench-initiator", email="i@example.com")
    sponsor = User.objects.create(username="bench-sponsor", email="s@example.com")
    sponsor.groups.add(Group.objects.get_or_create(name=SPONSORS_GROUP)[0])
    staff = User.objects.create(username="bench-staff", email="f@example.com", is_staff=True, is_superuser=True)
    category = Category.objects.create(name="Bench", slug="bench")
    campaigns = Campaign.objects.bulk_create(
        Campaign(
            initiator=initiator,
            title=f"Campaign {i}",
            slug=f"bench-{i}",
            summary="s",
            category=category,
            goal=1_000_000,
            status=CampaignStatus.LIVE,
            launched_at=now,
            deadline=now + timedelta(days=30),
            platform_fee_bps=500,
        )
        for i in range(n_campaigns)
    )
    pool = pool_create(
        actor=sponsor,
        sponsor=sponsor,
        name="Bench pool",
        currency="USD",
        amount=POOL,
        mode=PoolMode.QUADRATIC,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=60),
        categories=[category],
    )
    pool_fund(pool=pool, actor=sponsor, payment_token="tok_visa")
    matching_round = round_create(
        pool=pool, actor=sponsor, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)
    )
    per_campaign = n_contributions // n_campaigns
    rng = np.random.default_rng(14)
    for campaign in campaigns:
        amounts = np.maximum(100, rng.lognormal(np.log(2_500), 1.0, size=per_campaign)).astype(int).tolist()
        held_pledges_create_bulk(campaign=campaign, count=per_campaign, amount=lambda i, a=amounts: a[i])
    print(f"seeded {per_campaign * n_campaigns:,} held pledges in {time.perf_counter() - started:.0f} s")
    if connection.vendor == "postgresql":
        # Freshly bulk-loaded tables have no planner statistics until autovacuum gets to them,
        # and the round's pledge query then takes a plan dozens of times slower.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    from matching.selectors import match_estimates, round_standing

    cpu = time.process_time()
    round_standing(matching_round=matching_round, fresh=True)
    print(f"live estimate's standing (beat, once a minute): cpu {(time.process_time() - cpu) * 1000:.0f} ms")
    cpus, walls = [], []
    for campaign in campaigns[:20]:
        cpu, wall = time.process_time(), time.perf_counter()
        (estimate,) = match_estimates(campaign=campaign, amount=1_000)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print(
        f"live estimate through the database, {per_campaign} pledges per campaign: "
        f"wall median {statistics.median(walls) * 1000:.1f} ms, max {max(walls) * 1000:.1f} ms; "
        f"cpu median {statistics.median(cpus) * 1000:.1f} ms, max {max(cpus) * 1000:.1f} ms "
        f"(last: {estimate.low} to {estimate.high})"
    )
    later = matching_round.ends_at + timedelta(seconds=1)
    wall = time.perf_counter()
    round_end(matching_round=matching_round, now=later)
    ended = time.perf_counter() - wall
    round_publish(matching_round=matching_round, now=later)
    wall = time.perf_counter()
    round_pay(matching_round=matching_round, actor=staff, now=later + timedelta(days=3))
    paid = time.perf_counter() - wall
    print(f"round end (read, allocate, write {Allocation.objects.count():,} rows): {ended:.2f} s")
    print(f"round payment (one ledger transaction into every escrow): {paid:.2f} s")
    print(f"finalising in all: {ended + paid:.2f} s (budget 10 s)")
    problems = ledger_verify()
    print("ledger verifies" if not problems else f"LEDGER PROBLEMS: {problems}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contributions", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--finalise", action="store_true", help="time ending and paying a round in a database")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.finalise:
        finalise(args.contributions, args.campaigns, args.database_url)
        return
    contributions, initiators = make_round(args.contributions, args.campaigns)
    print(f"{args.contributions:,} contributions over {args.campaigns:,} campaigns, pool {POOL:,} minor units")
    cap = default_quadratic_cap(POOL)
    measure(
        "quadratic, 10 % cap",
        lambda: quadratic(pool=POOL, contributions=contributions, per_campaign_cap=cap, excluded=initiators),
        args.repeat,
    )
    measure(
        "quadratic, 1 % cap (many capped, redistributed)",
        lambda: quadratic(pool=POOL, contributions=contributions, per_campaign_cap=POOL // 100, excluded=initiators),
        args.repeat,
    )

    live_estimate(contributions, initiators, cap, args.repeat)
    measure(
        "pro rata, 1 % cap",
        lambda: pro_rata(pool=POOL, contributions=contributions, per_campaign_cap=POOL // 100, excluded=initiators),
        args.repeat,
    )
    measure(
        "fixed ratio 1:1, caps 50.00 / 100.00 / 1,000.00",
        lambda: fixed_ratio(
            pool=POOL,
            contributions=contributions,
            per_contribution_cap=5_000,
            per_backer_cap=10_000,
            per_campaign_cap=100_000,
            excluded=initiators,
        ),
        args.repeat,
    )


if __name__ == "__main__":
    main()

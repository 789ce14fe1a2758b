"""Matching allocation benchmark: quadratic funding of a large round, in memory.

Budget (issue 14): quadratic allocation (with the per-campaign cap and its redistribution) of
100,000 contributions over 1,000 campaigns in <= 1 s.

    .venv/bin/python benchmarks/matching.py [--contributions 100000] [--campaigns 1000] [--repeat 7]

The allocation is pure (``matching.allocation``): no database is touched, so none is set up.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contributions", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
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

    # The live estimate (matching.selectors.match_estimates) runs the allocation with and without
    # the new gift, on the round as it is and on the round doubled: four allocations.
    def with_gift(c: Contributions) -> Contributions:
        return Contributions(
            np.append(c.campaign, 1),
            np.append(c.backer, 10**9),
            np.append(c.amount, 1_000),
            np.append(c.sequence, 10**12),
        )

    c = contributions
    doubled = Contributions(
        np.concatenate([c.campaign, c.campaign]),
        np.concatenate([c.backer, c.backer + 10**6]),
        np.concatenate([c.amount, c.amount]),
        np.concatenate([c.sequence, c.sequence + 10**6]),
    )

    def estimate():
        for rows in (contributions, with_gift(contributions), doubled, with_gift(doubled)):
            result = quadratic(pool=POOL, contributions=rows, per_campaign_cap=cap, excluded=initiators)
        return result

    measure("live estimate, its allocations only (no database)", estimate, args.repeat)
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

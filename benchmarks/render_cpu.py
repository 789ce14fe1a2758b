"""CPU time and queries of a first render of the campaign page, in one process (no server, no page cache).

Wall-clock rates swing with the machine's load; the CPU time this process spends rendering a
page, and the statements it sends, do not (much). Renders the campaign page of ``--pages``
distinct live campaigns through Django's test client as a logged-out visitor with
``PAGE_CACHE_SECONDS=0`` (every request is a first render), after a short warm-up, ``--rounds``
times, and prints the median CPU milliseconds and the queries per render. ``--code`` names the
source tree to import (another checkout, for an A/B on the same database in the same minute);
the database must already be seeded and migrated (``benchmarks/pages.py`` does both).
``--profile`` prints cProfile's top functions of one round and its Python function calls per
render: the first round (pages this process has not rendered yet), or with ``--profile-last`` an
extra round after the counted ones (the same pages again). ``--cold`` empties the cache
(``CACHE_URL``: give it your own Redis database) before each round, so what the page reads
through it (the initiator's delivery record) is read afresh too, as on a campaign's first visit;
without it, rounds after the first find those in the cache.

    .venv/bin/python benchmarks/render_cpu.py --database-url postgres://.../cf_x [--code /work/main]
                                              [--pages 100] [--rounds 3] [--cold] [--profile [--profile-last]]
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--code", default=str(Path(__file__).resolve().parent.parent), help="source tree to import")
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--profile-last",
        action="store_true",
        help="profile an extra last round (pages seen before) instead of the first",
    )
    parser.add_argument("--cold", action="store_true", help="empty the cache before each round (read afresh)")
    parser.add_argument("--profile-out", help="with --profile: also write the profile's stats to this file")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-insecure-key")
    os.environ["DJANGO_SETTINGS_MODULE"] = "crowdfund_site.settings"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ["PAGE_CACHE_SECONDS"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, args.code)
    os.chdir(args.code)  # Celery's app puts the working directory first on sys.path

    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    import projects
    from projects.models import Campaign

    assert Path(projects.__file__).resolve().is_relative_to(Path(args.code).resolve()), projects.__file__

    settings.ALLOWED_HOSTS = ["*"]
    settings.PAGE_CACHE_SECONDS = 0
    slugs = list(Campaign.objects.open_for_pledges().order_by("pk").values_list("slug", flat=True)[: args.pages + 5])
    client = Client()
    for slug in slugs[:5]:  # warm-up: templates compiled, URL resolvers and translations loaded
        assert client.get(f"/campaigns/{slug}/").status_code == 200
    slugs = slugs[5:]
    cpu_per_render, queries = [], 0
    profiled_round = args.rounds if args.profile_last else 0
    for round_ in range(args.rounds + (1 if args.profile and args.profile_last else 0)):
        if args.cold:
            cache.clear()
        profiler = cProfile.Profile() if args.profile and round_ == profiled_round else None
        with CaptureQueriesContext(connection) as captured:
            started = time.process_time()
            if profiler:
                profiler.enable()
            for slug in slugs:
                response = client.get(f"/campaigns/{slug}/")
                assert response.status_code == 200, response.status_code
            if profiler:
                profiler.disable()
            elapsed = time.process_time() - started
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(os.environ.get("PROFILE_FILTER", ""), 40)
            print(
                f"profiled ({'last' if args.profile_last else 'first'} round): "
                f"{stats.total_calls / len(slugs):,.0f} Python function calls, "
                f"{len(captured) / len(slugs):.1f} queries per render"
            )
            if args.profile_out:
                stats.dump_stats(args.profile_out)
            continue  # a profiled round is slower: not counted
        cpu_per_render.append(elapsed / len(slugs) * 1000)
        queries = len(captured) / len(slugs)
    if not cpu_per_render:
        return  # every round was the profiled one
    print(
        f"code {args.code}: {len(slugs)} pages x {len(cpu_per_render)} rounds, first render CPU "
        f"{' / '.join(f'{ms:.2f}' for ms in cpu_per_render)} ms (median {statistics.median(cpu_per_render):.2f}), "
        f"{queries:.1f} queries per render"
    )


if __name__ == "__main__":
    main()

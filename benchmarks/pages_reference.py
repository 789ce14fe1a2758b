"""Settings for the pages benchmark's gunicorn: the site's own, with reference pages mounted beside it.

Issue 17's reference line: in the same run and through the same gunicorn as the pages it judges,
a minimal Django view that reads one row (``/bench/row/<pk>``: every middleware, one ORM read of
a campaign by primary key, a few bytes of text). The budgets of ``benchmarks/pages.py`` are stated
as ratios to it, so a machine that is twice as slow today moves both sides. The view lives here,
not in the site, so production has no page that only a benchmark needs.
"""

from crowdfund_site.settings import *  # noqa: F403

ROOT_URLCONF = "pages_reference_urls"

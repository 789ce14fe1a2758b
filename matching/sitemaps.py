"""Public pool pages in the sitemap: a section registered into promotion's by ``MatchingConfig.ready()``."""

from typing import ClassVar

from django.db.models.functions import Coalesce
from django.urls import reverse

from promotion.sitemaps import Section

from .models import PoolStatus
from .selectors import pools_public

# Pools whose page has something to show: money being matched now, or a round's results.
# Upcoming pools join once they start.
SITEMAP_POOL_STATUSES = (PoolStatus.RUNNING.value, PoolStatus.ENDED.value, PoolStatus.CLOSED.value)


class PoolSection(Section):
    fields: ClassVar[tuple[str, ...]] = ("slug",)
    # A pool has no "updated" column: its page last changed when it closed, else when it was funded.
    lastmod_field: ClassVar[str] = "page_changed_at"

    def queryset(self):
        return (
            pools_public()
            .select_related(None)
            .filter(status__in=SITEMAP_POOL_STATUSES)
            .annotate(page_changed_at=Coalesce("closed_at", "funded_at"))
        )

    def url(self, row) -> str:
        return reverse("matching:pool_detail", kwargs={"slug": row[1]})

"""sitemap.xml: an index of sitemaps of at most 50,000 URLs each, written as a stream.

Each section names its pages: how many URLs it has, and the URLs (path and last change) of one
file, read with a keyset over the primary key so file 2 costs what file 1 costs. The campaign,
update and creator sections are here. Apps above
promotion add their pages with ``sitemap_section_register`` from their ``AppConfig.ready()``
(matching's pools: ``matching/sitemaps.py``), so promotion never imports them.
"""

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import ClassVar
from xml.sax.saxutils import escape

from django.contrib.auth import get_user_model
from django.db.models import CharField, Count, Exists, Func, Max, OuterRef, Subquery
from django.urls import reverse

from projects.models import CampaignUpdate
from projects.selectors import campaigns_visible_to

URLS_PER_FILE = 50_000
CHUNK = 5_000
XMLNS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def _w3c(moment: datetime) -> str:
    """Return ``moment`` in the W3C datetime form the protocol asks for, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class W3CDateTime(Func):
    """The column as W3C datetime text in UTC ("2026-12-02T04:28:10+00:00"), formatted by the database.

    Replaces reading the datetime into Python and calling ``_w3c`` on it: turning 50,000
    timestamps into aware datetimes and back into text was most of a sitemap file's time
    (benchmarks/README.md, promotion). Both databases store UTC.
    """

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')",
            **extra,
        )

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="strftime('%%Y-%%m-%%dT%%H:%%M:%%S+00:00', %(expressions)s)", **extra
        )


class Section:
    """One kind of page in the sitemap, split into files of URLS_PER_FILE."""

    fields: ClassVar[tuple[str, ...]] = ()
    lastmod_field: ClassVar[str] = "updated_at"

    def __init__(self, name: str) -> None:
        self.name = name

    def queryset(self):
        raise NotImplementedError

    def url(self, row) -> str:
        raise NotImplementedError

    def summary(self) -> tuple[int, datetime | None]:
        """Return how many URLs the section has and when the latest changed, in one query."""
        found = self.queryset().aggregate(count=Count("pk"), latest=Max(self.lastmod_field))
        return found["count"], found["latest"]

    def files(self, count: int | None = None) -> int:
        """Return how many files the section needs (0 when empty: an empty urlset is not valid)."""
        return -(-(self.summary()[0] if count is None else count) // URLS_PER_FILE)

    def rows(self, number: int) -> Iterator[tuple]:
        """Yield the rows of file ``number`` (1-based) in primary-key order, CHUNK at a time."""
        queryset = (
            self.queryset()
            .order_by("pk")
            .annotate(lastmod_text=W3CDateTime(self.lastmod_field))
            .values_list("pk", *self.fields, "lastmod_text")
        )
        start = queryset[(number - 1) * URLS_PER_FILE : (number - 1) * URLS_PER_FILE + 1].first()
        if start is None:
            return
        after, left = start[0] - 1, URLS_PER_FILE
        while left > 0:
            chunk = list(queryset.filter(pk__gt=after)[: min(CHUNK, left)])
            if not chunk:
                return
            yield from chunk
            after, left = chunk[-1][0], left - len(chunk)


class CampaignSection(Section):
    fields: ClassVar[tuple[str, ...]] = ("slug",)

    def queryset(self):
        return campaigns_visible_to(user=None).select_related(None)

    def url(self, row) -> str:
        return f"/campaigns/{row[1]}/"


class UpdateSection(Section):
    fields: ClassVar[tuple[str, ...]] = ("campaign__slug",)
    lastmod_field: ClassVar[str] = "created_at"

    def queryset(self):
        return CampaignUpdate.objects.filter(
            backers_only=False, campaign__in=campaigns_visible_to(user=None).select_related(None).values("pk")
        )

    def url(self, row) -> str:
        return f"/campaigns/{row[1]}/updates/{row[0]}/"


class CreatorSection(Section):
    """The public pages of people who started a campaign anyone can see (other people's pages list nothing)."""

    fields: ClassVar[tuple[str, ...]] = ("username",)
    # A creator page shows their campaigns: it last changed when the latest of them did.
    lastmod_field: ClassVar[str] = "page_changed_at"

    def queryset(self):
        theirs = campaigns_visible_to(user=None).select_related(None).filter(initiator=OuterRef("pk"))
        return (
            get_user_model()
            .objects.filter(Exists(theirs), is_active=True)
            .annotate(page_changed_at=Subquery(theirs.order_by("-updated_at").values("updated_at")[:1]))
        )

    def url(self, row) -> str:
        return reverse("accounts:creator", kwargs={"username": row[1]})


SECTIONS: dict[str, Section] = {
    s.name: s for s in (CampaignSection("campaigns"), UpdateSection("updates"), CreatorSection("creators"))
}


def sitemap_section_register(section: Section) -> None:
    """Add ``section`` to the sitemap (after the ones here), or replace the section of that name.

    For an app whose pages promotion does not know: it subclasses ``Section`` and registers it
    from its ``AppConfig.ready()``; the index and /sitemap-<name>-<n>.xml follow.
    """
    SECTIONS[section.name] = section


def sitemap_index_lines(*, base: str) -> Iterable[str]:
    """Yield the index: one <sitemap> per file of every section, with the section's last change."""
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{XMLNS}">\n'
    for section in SECTIONS.values():
        count, lastmod = section.summary()
        files = section.files(count)
        for number in range(1, files + 1):
            loc = escape(
                f"{base}{reverse('promotion:sitemap_section', kwargs={'section': section.name, 'number': number})}"
            )
            mod = f"<lastmod>{_w3c(lastmod)}</lastmod>" if lastmod else ""
            yield f"<sitemap><loc>{loc}</loc>{mod}</sitemap>\n"
    yield "</sitemapindex>\n"


def sitemap_lines(*, section: Section, number: int, base: str) -> Iterable[str]:
    """Yield one sitemap file: up to 50,000 <url> entries with <loc> and <lastmod>, in chunks."""
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{XMLNS}">\n'
    lines = []
    url = section.url
    base = escape(base)
    for row in section.rows(number):
        # Paths are built from slugs and ids (letters, digits, "-", "_"): nothing to escape.
        lines.append(f"<url><loc>{base}{url(row)}</loc><lastmod>{row[-1]}</lastmod></url>\n")
        if len(lines) == CHUNK:
            yield "".join(lines)
            lines = []
    yield "".join(lines)
    yield "</urlset>\n"

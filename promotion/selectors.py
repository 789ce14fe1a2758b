"""Reads of the promotion app: the referral report, follows and notices for the pages."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef

from projects.models import Campaign
from projects.selectors import BACKER_PLEDGE_STATUSES

from .models import (
    CAMPAIGN_SLUG_CHANGES_MAX,
    CampaignSlugChange,
    CampaignSlugHistory,
    Follow,
    Notice,
    NoticeKind,
    ReferralLink,
    ReferralVisit,
    VisitKind,
)

ATTRIBUTION_WINDOW = timedelta(days=30)
# Launch-notice counts are shown only from this many, so a near-empty list says nothing.
NOTIFY_COUNT_SHOWN_FROM = 10
DIRECT = ""


@dataclass
class SourceRow:
    """One line of the report: a tag (``kind`` "tag"), a referring site ("site") or direct."""

    kind: str
    name: str
    label: str = ""
    clicks: int = 0
    sessions: int = 0
    started: int = 0
    pledges: int = 0
    dropped: int = 0
    amount: int = 0
    utm: dict = field(default_factory=dict)
    _visitors: set = field(default_factory=set, repr=False)


@dataclass
class ReferralReport:
    campaign: Campaign
    tags: list[SourceRow]
    sites: list[SourceRow]
    direct: SourceRow
    attribution_window_days: int = ATTRIBUTION_WINDOW.days

    @property
    def rows(self) -> list[SourceRow]:
        return [*self.tags, *self.sites, self.direct]


def campaign_slugs(*, campaign: Campaign) -> list[str]:
    """Return the campaign's slug and every slug it had before."""
    return [campaign.slug, *CampaignSlugHistory.objects.filter(campaign=campaign).values_list("slug", flat=True)]


def campaign_slug_changes_left(*, campaign: Campaign) -> int:
    """Return how many more times the initiator may change the campaign's web address."""
    made = CampaignSlugChange.objects.filter(campaign=campaign, by_initiator=True).count()
    return max(CAMPAIGN_SLUG_CHANGES_MAX - made, 0)


def campaign_old_slugs(*, campaign: Campaign) -> list[str]:
    """Return the slugs the campaign answered to before, newest first (each answers 301)."""
    return list(CampaignSlugHistory.objects.filter(campaign=campaign).values_list("slug", flat=True))


def referral_links(*, campaign: Campaign):
    return ReferralLink.objects.filter(campaign=campaign).order_by("created_at", "id")


def _source(visit: dict) -> tuple[str, str]:
    if visit["tag"]:
        return ("tag", visit["tag"])
    return ("site", visit["referrer_host"])


def referral_report(*, campaign: Campaign) -> ReferralReport:
    """Return clicks, sessions, pledges started, made and dropped, and amounts per source.

    Attribution is last arrival: a pledge counts for the visitor's latest tagged or off-site
    arrival within ``ATTRIBUTION_WINDOW`` before it, across sessions (the visitor cookie), by
    the pledging account's browsers (linked when they are signed in on an arrival or open the
    pledge form). Pledges with no such arrival are direct. A dropped pledge is a signed-in
    visitor who opened the pledge form and has no pledge on the campaign. Three queries.
    """
    visits = list(
        ReferralVisit.objects.filter(campaign_slug__in=campaign_slugs(campaign=campaign))
        .order_by("created_at", "id")
        .values("kind", "tag", "referrer_host", "visitor", "user_id", "created_at", *_UTM)
    )
    pledges = list(
        campaign.pledges.filter(status__in=BACKER_PLEDGE_STATUSES).values("backer_id", "amount", "created_at")
    )
    links = {link.tag: link for link in referral_links(campaign=campaign)}
    rows: dict[tuple[str, str], SourceRow] = {
        ("tag", tag): SourceRow(kind="tag", name=tag, label=link.label) for tag, link in links.items()
    }
    direct = SourceRow(kind="direct", name=DIRECT)

    def row_of(key: tuple[str, str]) -> SourceRow:
        if key not in rows:
            rows[key] = SourceRow(kind=key[0], name=key[1])
        return rows[key]

    visitors_of_user: dict[int, set[str]] = defaultdict(set)
    arrivals_of_visitor: dict[str, list[dict]] = defaultdict(list)
    for visit in visits:
        if visit["user_id"] is not None:
            visitors_of_user[visit["user_id"]].add(visit["visitor"])
        if visit["kind"] == VisitKind.CLICK:
            row = row_of(_source(visit))
            row.clicks += 1
            row._visitors.add(visit["visitor"])
            for name in _UTM:
                if visit[name]:
                    row.utm.setdefault(name, set()).add(visit[name])
            arrivals_of_visitor[visit["visitor"]].append(visit)

    def source_before(user_id: int, when) -> SourceRow:
        latest = None
        for visitor in visitors_of_user.get(user_id, ()):
            for arrival in arrivals_of_visitor.get(visitor, ()):
                if when - ATTRIBUTION_WINDOW <= arrival["created_at"] <= when and (
                    latest is None or arrival["created_at"] > latest["created_at"]
                ):
                    latest = arrival
        return direct if latest is None else row_of(_source(latest))

    backers = set()
    for pledge in pledges:
        backers.add(pledge["backer_id"])
        row = source_before(pledge["backer_id"], pledge["created_at"])
        row.pledges += 1
        row.amount += pledge["amount"]
    started_by_user: dict[int, object] = {}
    for visit in visits:
        if visit["kind"] == VisitKind.START and visit["user_id"] is not None:
            started_by_user.setdefault(visit["user_id"], visit["created_at"])
    for user_id, when in started_by_user.items():
        row = source_before(user_id, when)
        row.started += 1
        if user_id not in backers:
            row.dropped += 1
    for row in [*rows.values(), direct]:
        row.sessions = len(row._visitors)
        row.utm = {name: sorted(values) for name, values in row.utm.items()}
    tags = [row for key, row in rows.items() if key[0] == "tag"]
    sites = sorted((row for key, row in rows.items() if key[0] == "site"), key=lambda r: (-r.clicks, r.name))
    return ReferralReport(campaign=campaign, tags=tags, sites=sites, direct=direct)


_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


@dataclass(frozen=True)
class PromotionState:
    follows: bool = False
    reminding: bool = False
    notifying: bool = False


def promotion_state(*, user, campaign: Campaign) -> PromotionState:
    """Return whether ``user`` follows the campaign's creator and awaits its notices, in one query."""
    if user is None or not user.is_authenticated:
        return PromotionState()
    pending = Notice.objects.filter(user_id=OuterRef("pk"), campaign_id=campaign.pk, done_at__isnull=True)
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .values("pk")
        .annotate(
            follows=Exists(Follow.objects.filter(follower_id=OuterRef("pk"), creator_id=campaign.initiator_id)),
            reminding=Exists(pending.filter(kind=NoticeKind.ENDING)),
            notifying=Exists(pending.filter(kind=NoticeKind.LAUNCH)),
        )
        .first()
    )
    if row is None:
        return PromotionState()
    return PromotionState(follows=row["follows"], reminding=row["reminding"], notifying=row["notifying"])


def launch_notice_count(*, campaign: Campaign) -> int | None:
    """Return how many asked to be told of the launch, or None while fewer than 10 did."""
    count = Notice.objects.filter(campaign=campaign, kind=NoticeKind.LAUNCH).count()
    return count if count >= NOTIFY_COUNT_SHOWN_FROM else None

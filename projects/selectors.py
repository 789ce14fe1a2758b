"""Read queries for campaigns, shared by pages and the API.

Every list here is one query whatever its length: cards read the running totals kept on the
campaign row (``pledged_amount``, ``backer_count``) and join category and initiator.
"""

from datetime import timedelta

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from crowdfund_site.exceptions import NotFound

from .models import Campaign, CampaignStatus, CampaignUpdate, Category, Comment, RewardTier

# A live campaign whose deadline is this close is "ending soon".
ENDING_SOON_WITHIN = timedelta(days=3)
# A campaign launched this recently is "new".
NEW_WITHIN = timedelta(days=14)


class DiscoverSort:
    """How the discover page may order campaigns; RELEVANCE only makes sense with a query."""

    RELEVANCE = "relevance"
    ENDING = "ending"
    NEWEST = "newest"
    MOST_FUNDED = "most_funded"
    MOST_BACKED = "most_backed"
    CHOICES = [
        (RELEVANCE, "Best match"),
        (ENDING, "Ending soonest"),
        (NEWEST, "Newest"),
        (MOST_FUNDED, "Most funded (% of goal)"),
        (MOST_BACKED, "Most backers"),
    ]


def campaigns_live() -> QuerySet[Campaign]:
    """Return campaigns taking pledges now, ending soonest first."""
    return (
        Campaign.objects.filter(status=CampaignStatus.LIVE, deadline__gt=timezone.now())
        .select_related("category", "initiator")
        .order_by("deadline", "id")
    )


def campaigns_ending_soon() -> QuerySet[Campaign]:
    """Return live campaigns whose deadline is within ENDING_SOON_WITHIN, soonest first."""
    return campaigns_live().filter(deadline__lte=timezone.now() + ENDING_SOON_WITHIN)


def campaigns_new() -> QuerySet[Campaign]:
    """Return live campaigns launched within NEW_WITHIN, newest first."""
    return campaigns_live().filter(launched_at__gte=timezone.now() - NEW_WITHIN).order_by("-launched_at", "-id")


def campaigns_discover(*, query: str = "", category: Category | None = None, sort: str = "") -> QuerySet[Campaign]:
    """Return live campaigns matching ``query`` in ``category``, ordered by ``sort``.

    Search is PostgreSQL full-text search (title weighted above summary above story) on
    PostgreSQL, and a case-insensitive substring match elsewhere (SQLite in development).
    Without a query, "relevance" falls back to ending soonest.
    """
    campaigns = campaigns_live()
    if category is not None:
        campaigns = campaigns.filter(category=category)
    query = query.strip()
    if query:
        campaigns = _search(campaigns, query)
    elif sort == DiscoverSort.RELEVANCE:
        sort = DiscoverSort.ENDING
    if sort == DiscoverSort.NEWEST:
        return campaigns.order_by("-launched_at", "-id")
    if sort == DiscoverSort.MOST_FUNDED:
        return campaigns.order_by((F("pledged_amount") * 10_000 / F("goal")).desc(), "deadline", "id")
    if sort == DiscoverSort.MOST_BACKED:
        return campaigns.order_by("-backer_count", "deadline", "id")
    if query and sort in ("", DiscoverSort.RELEVANCE) and connection.vendor == "postgresql":
        return campaigns.order_by("-rank", "deadline", "id")
    return campaigns.order_by("deadline", "id")


def _search(campaigns: QuerySet[Campaign], query: str) -> QuerySet[Campaign]:
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = (
            SearchVector("title", weight="A", config="english")
            + SearchVector("summary", weight="B", config="english")
            + SearchVector("description", weight="C", config="english")
        )
        search = SearchQuery(query, search_type="websearch", config="english")
        return campaigns.annotate(document=vector, rank=SearchRank(vector, search)).filter(document=search)
    words = query.split()[:8]
    condition = Q()
    for word in words:
        condition &= Q(title__icontains=word) | Q(summary__icontains=word) | Q(description__icontains=word)
    return campaigns.filter(condition)


def categories_all() -> list[Category]:
    """Return every category, by name."""
    return list(Category.objects.order_by("name"))


def campaign_public_get(*, slug: str) -> Campaign | None:
    """Return a campaign anyone may see (it has been live), or None."""
    return (
        Campaign.objects.select_related("category", "initiator")
        .prefetch_related("rewards")
        .exclude(launched_at__isnull=True)
        .filter(slug=slug)
        .first()
    )


def campaign_page_get(*, slug: str, viewer=None) -> Campaign | None:
    """Return the campaign for its page, or None if ``viewer`` may not see it.

    Anyone sees a campaign that has been live or is approved and about to launch; its
    initiator also sees it while it is a draft or in review (a preview). The campaign carries
    what the page shows of its category and initiator as ``category_name`` and
    ``initiator_public_name`` (one query, written out like the reads below). The page reads the
    rewards, updates and comments with one query each (``campaign_reward_tiers`` and below), so
    it costs the same few queries whatever their number.
    """
    viewer_id = viewer.pk if viewer is not None and viewer.is_authenticated else None
    found = Campaign.objects.raw(
        "SELECT c.*, cat.name AS category_name, "
        "COALESCE(NULLIF(u.display_name, ''), u.username) AS initiator_public_name "
        "FROM projects_campaign c "
        "JOIN projects_category cat ON cat.id = c.category_id JOIN accounts_user u ON u.id = c.initiator_id "
        "WHERE c.slug = %s AND (c.launched_at IS NOT NULL OR c.status = %s OR c.initiator_id = %s)",
        [slug, CampaignStatus.APPROVED.value, viewer_id],
    )
    return next(iter(found), None)


# Campaigns anyone may see: they have been live. Earlier stages are seen by their initiator.
PUBLIC_STATUSES = (CampaignStatus.LIVE, CampaignStatus.CLOSING, CampaignStatus.SUCCEEDED, CampaignStatus.FAILED)


def campaigns_visible_to(*, user) -> QuerySet[Campaign]:
    """Return the campaigns ``user`` may see: public ones, their own, and all for campaign staff."""
    campaigns = Campaign.objects.select_related("category", "initiator")
    if user is not None and user.is_authenticated:
        if user.is_staff and user.has_perm("projects.view_campaign"):
            return campaigns
        return campaigns.filter(Q(status__in=PUBLIC_STATUSES) | Q(initiator=user))
    return campaigns.filter(status__in=PUBLIC_STATUSES)


def campaigns_of_initiator(*, user) -> QuerySet[Campaign]:
    """Return the campaigns ``user`` started, newest first, with their category."""
    return (
        Campaign.objects.filter(initiator=user).select_related("category", "initiator").order_by("-created_at", "-id")
    )


def campaign_of_initiator_get(*, slug: str, initiator) -> Campaign | None:
    """Return ``initiator``'s campaign ``slug`` with its rewards, or None (also if it is someone else's)."""
    return campaigns_of_initiator(user=initiator).prefetch_related("rewards").filter(slug=slug).first()


# Pledge statuses (see pledges.models.PledgeStatus) that make someone a backer, who may comment
# and read backers-only updates; spelled out here because projects does not import pledges.
BACKER_PLEDGE_STATUSES = ("held", "released")
COMMENTS_ON_PAGE = 100


def user_is_backer(*, campaign: Campaign, user) -> bool:
    """Return True if ``user`` has a held or released pledge on ``campaign`` (one query)."""
    if user is None or not user.is_authenticated:
        return False
    return campaign.pledges.filter(backer_id=user.pk, status__in=BACKER_PLEDGE_STATUSES).exists()


# The campaign page's reads (``campaign_page_get`` and these) are written out in SQL: on every
# first render of a campaign page, compiling them through the ORM cost two to three times as
# much CPU as running them (0.3 to 0.5 ms each against 0.15 to 0.2), and first renders are what
# a launch-day rush waits on.


def campaign_reward_tiers(*, campaign: Campaign) -> list[RewardTier]:
    """Return the campaign's reward tiers, cheapest first (one query)."""
    return list(
        RewardTier.objects.raw(
            "SELECT * FROM projects_rewardtier WHERE campaign_id = %s ORDER BY minimum_amount, id", [campaign.pk]
        )
    )


def campaign_updates(*, campaign: Campaign) -> list[CampaignUpdate]:
    """Return the campaign's updates, newest first (one query); callers hide backers-only bodies."""
    return list(
        CampaignUpdate.objects.raw(
            "SELECT * FROM projects_campaignupdate WHERE campaign_id = %s ORDER BY created_at DESC, id DESC",
            [campaign.pk],
        )
    )


def campaign_comments(*, campaign: Campaign, limit: int = COMMENTS_ON_PAGE) -> list[Comment]:
    """Return the latest ``limit`` comments, oldest first, each with its ``author_public_name`` (one query)."""
    latest = Comment.objects.raw(
        "SELECT c.*, COALESCE(NULLIF(u.display_name, ''), u.username) AS author_public_name "
        "FROM projects_comment c JOIN accounts_user u ON u.id = c.author_id "
        "WHERE c.campaign_id = %s ORDER BY c.created_at DESC, c.id DESC LIMIT %s",
        [campaign.pk, limit],
    )
    return list(reversed(list(latest)))


def user_reads_backer_updates(*, campaign: Campaign, user) -> bool:
    """Return True if ``user`` may read the bodies of backers-only updates: the initiator or a backer.

    The campaign page applies the same rule; everyone else sees such an update's title only.
    """
    if user is not None and user.is_authenticated and user.pk == campaign.initiator_id:
        return True
    return user_is_backer(campaign=campaign, user=user)


def campaign_update_list(*, campaign: Campaign) -> QuerySet[CampaignUpdate]:
    """Return the campaign's updates, newest first, as a query a paginator slices (one query a page)."""
    return CampaignUpdate.objects.filter(campaign=campaign).order_by("-created_at", "-id")


def campaign_comment_list(*, campaign: Campaign) -> QuerySet[Comment]:
    """Return every comment on the campaign, oldest first, with its author, as a query to paginate."""
    return Comment.objects.filter(campaign=campaign).select_related("author").order_by("created_at", "id")


def campaign_get_visible(*, user, campaign_id: int) -> Campaign:
    """Return the campaign if ``user`` may see it (``campaigns_visible_to``); raise NotFound otherwise."""
    campaign = campaigns_visible_to(user=user).filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign

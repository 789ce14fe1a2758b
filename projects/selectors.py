"""Read queries for campaigns, shared by pages and the API.

Every list here is one query whatever its length: cards read the running totals kept on the
campaign row (``pledged_amount``, ``backer_count``) and join category and initiator.
"""

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Exists, F, FilteredRelation, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext

from crowdfund_site.exceptions import InvalidInput, NotFound

from .models import (
    AddOn,
    Campaign,
    CampaignStatus,
    CampaignStatusChange,
    CampaignUpdate,
    Category,
    Comment,
    RewardShippingRule,
    RewardTier,
    StretchGoal,
)
from .shipping import country_name, country_normalise, destinations_covering, shipping_cost_for

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
    """Return the campaigns open for pledges now, ending soonest first, the same for every visitor.

    They are what anyone may see (``campaigns_visible_to`` for a visitor) that takes pledges:
    every campaign open for pledges is public, so a signed-in person's discover page lists the
    same ones, and a suspended campaign is listed to nobody.
    """
    return campaigns_visible_to(user=None).open_for_pledges().order_by("deadline", "id")


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


# --- Who may see a campaign: the one rule, for the page, discover, the API and the admin preview ---

# Campaigns anyone may see: approved and about to launch ("Upcoming"), live, and ended.
PUBLIC_STATUSES = (
    CampaignStatus.APPROVED,
    CampaignStatus.LIVE,
    CampaignStatus.CLOSING,
    CampaignStatus.SUCCEEDED,
    CampaignStatus.FAILED,
)
# Pledge statuses (see pledges.models.PledgeStatus) that make someone a backer, who may comment,
# read backers-only updates and follow a suspended campaign they have money in; spelled out
# here because projects does not import pledges.
BACKER_PLEDGE_STATUSES = ("held", "released")
# Pledges that hold a reward's slot and may still change (pledges.models.OPEN_STATUSES).
REWARD_HOLDING_STATUSES = ("pending", "held")


def user_sees_every_campaign(user) -> bool:
    """Return True for campaign staff (staff with the view permission): they see every campaign, at every stage."""
    return user is not None and user.is_authenticated and user.is_staff and user.has_perm("projects.view_campaign")


def _visible_without_backing(user) -> Q:
    """The visibility rule's clauses that need no look at the user's pledges."""
    visible = Q(status__in=PUBLIC_STATUSES) | Q(status=CampaignStatus.CANCELLED, launched_at__isnull=False)
    if user is not None and user.is_authenticated:
        visible |= Q(initiator_id=user.pk)
    return visible


# Seen by its backers only (besides initiator and staff): a campaign suspended after it went live.
_SUSPENDED_AFTER_LAUNCH = Q(status=CampaignStatus.SUSPENDED, launched_at__isnull=False)


def campaigns_visible_to(*, user) -> QuerySet[Campaign]:
    """Return the campaigns ``user`` may see, with their category and initiator.

    The one visibility rule; the campaign page, discover, the API and the admin's preview of
    the page all start from it (one campaign through ``campaign_visible_get``), and a campaign
    left out is a 404 there, never a 403:

    - anyone: ``PUBLIC_STATUSES``, and a cancelled campaign that had been live (its backers were
      refunded; the page says so);
    - a suspended campaign that had been live: only its backers (a held or released pledge),
      with the page's "paused" notice, since they have money in it; to everyone else it is
      gone while the platform looks into it;
    - its initiator: their own campaign at every stage (drafts are their preview);
    - campaign staff (``user_sees_every_campaign``): every campaign.
    """
    campaigns = Campaign.objects.select_related("category", "initiator")
    if user_sees_every_campaign(user):
        return campaigns
    visible = _visible_without_backing(user)
    if user is not None and user.is_authenticated:
        pledges = Campaign._meta.get_field("pledges").related_model.objects
        backs_it = Exists(
            pledges.filter(campaign_id=OuterRef("pk"), backer_id=user.pk, status__in=BACKER_PLEDGE_STATUSES)
        )
        visible |= _SUSPENDED_AFTER_LAUNCH & backs_it
    return campaigns.filter(visible)


def campaign_visible_get(
    *, user, with_names: bool = True, with_reward: int | None = None, only: tuple[str, ...] | None = None, **lookup
) -> Campaign | None:
    """Return the campaign matching ``lookup`` (a unique field: ``pk=``, ``slug=``) if ``user`` may see it, else None.

    ``campaigns_visible_to`` for one campaign, in two steps so that the common case stays one
    plain query: the campaign is read if any clause but "backs it" lets ``user`` see it, or if it
    is suspended after launch, and only then is ``user`` checked for a pledge on it (a second
    query). The visibility tests hold the two to the same answers. ``with_names``: join the
    category and initiator the campaign's own pages show (a pledge needs neither).
    ``with_reward``: the id of a reward tier read in the same query, as ``campaign.chosen_reward``
    (None when it is not one of this campaign's tiers): a pledge for a reward reads both at once.
    ``only``: the columns to read (``QuerySet.only``), for a page that shows a known few.
    """
    campaigns = Campaign.objects.select_related("category", "initiator") if with_names else Campaign.objects.all()
    if only is not None:
        campaigns = campaigns.only(*only)
    if with_reward is not None:
        chosen = FilteredRelation("rewards", condition=Q(rewards__pk=with_reward))
        campaigns = campaigns.annotate(chosen_reward=chosen).select_related("chosen_reward")
    signed_in = user is not None and user.is_authenticated
    if user_sees_every_campaign(user):
        candidates = campaigns
    elif signed_in:
        candidates = campaigns.filter(_visible_without_backing(user) | _SUSPENDED_AFTER_LAUNCH)
    else:
        candidates = campaigns.filter(_visible_without_backing(user))
    # get(), not first(): the lookup is unique, and the ordering first() adds is work on every read.
    try:
        campaign = candidates.get(**lookup)
    except Campaign.DoesNotExist:
        return None
    if with_reward is not None:
        # select_related leaves a filtered relation that matched no row unset rather than None.
        campaign.chosen_reward = getattr(campaign, "chosen_reward", None)
    needs_backing = (
        campaign.status == CampaignStatus.SUSPENDED
        and not user_sees_every_campaign(user)
        and not (signed_in and user.pk == campaign.initiator_id)
    )
    if needs_backing and not user_is_backer(campaign=campaign, user=user):
        return None
    return campaign


def campaign_page_get(*, slug: str, viewer=None) -> Campaign | None:
    """Return the campaign for its page if ``viewer`` may see it (``campaign_visible_get``), else None.

    One query with its category and initiator; the page reads the rewards, updates and comments
    with one query each (``campaign_reward_tiers`` and below), so it costs the same few queries
    whatever their number. The page cache is in front of these for visitors.
    """
    return campaign_visible_get(user=viewer, slug=slug)


# The columns the campaign page shows (its template, ``campaign_page`` tags, state banner, share
# box, stretch goals), found by rendering pages with every other column deferred; the stages'
# rarer ones (review feedback, settlement) are kept too. Left out: the Markdown sources (the page
# shows their stored HTML), the review and settlement bookkeeping, and the initiator's account
# fields (password, email, names, flags). A column read later is one more query, which
# ``test_campaign_page_sections`` pins.
CAMPAIGN_PAGE_COLUMNS = (
    "id", "initiator_id", "category_id", "title", "slug", "summary", "description_html", "faq_html",
    "risks_html", "currency", "goal", "funding_model", "status", "duration_days", "launched_at",
    "deadline", "submitted_at", "reviewed_at", "review_feedback", "pledged_amount", "backer_count",
    "settlement_outcome", "settled_at", "cover", "gallery", "update_count", "comment_count",
    "has_milestone_plan", "stretch_goal_count", "addon_count",
    "category__id", "category__name", "category__slug",
    "initiator__id", "initiator__username", "initiator__display_name", "initiator__avatar",
    "initiator__email_verified", "initiator__has_delivery_record",
)  # fmt: skip


def campaign_page_render_get(*, slug: str, viewer=None) -> Campaign | None:
    """``campaign_page_get`` reading only ``CAMPAIGN_PAGE_COLUMNS``: the page's own first render.

    The same visibility rule (``campaign_visible_get``); about 40 of 60 columns, so less to
    compile, send and turn into Python. The page's forms (comment, milestones) keep every column.
    """
    return campaign_visible_get(user=viewer, slug=slug, only=CAMPAIGN_PAGE_COLUMNS)


def campaigns_of_initiator(*, user) -> QuerySet[Campaign]:
    """Return the campaigns ``user`` started, newest first, with their category."""
    return (
        Campaign.objects.filter(initiator=user).select_related("category", "initiator").order_by("-created_at", "-id")
    )


def campaign_of_initiator_get(*, slug: str, initiator) -> Campaign | None:
    """Return ``initiator``'s campaign ``slug`` with its rewards, or None (also if it is someone else's)."""
    return campaigns_of_initiator(user=initiator).prefetch_related("rewards").filter(slug=slug).first()


COMMENTS_ON_PAGE = 100


def user_is_backer(*, campaign: Campaign, user) -> bool:
    """Return True if ``user`` has a held or released pledge on ``campaign`` (one query)."""
    if user is None or not user.is_authenticated:
        return False
    return campaign.pledges.filter(backer_id=user.pk, status__in=BACKER_PLEDGE_STATUSES).exists()


def campaign_reward_tiers(*, campaign: Campaign) -> list[RewardTier]:
    """Return the campaign's reward tiers, cheapest first (one query)."""
    return list(RewardTier.objects.filter(campaign_id=campaign.pk).order_by("minimum_amount", "id"))


def reward_shipping_rules(*, reward: RewardTier) -> list[tuple[str, int]]:
    """Return the reward's shipping rules as (destination, cost) pairs, in the order given (one query)."""
    return list(
        RewardShippingRule.objects.filter(reward_id=reward.pk).order_by("id").values_list("destination", "cost")
    )


def reward_shipping_agreed(*, reward: RewardTier) -> list[tuple[str, int, int]]:
    """Return (country, shipping, pledges) for what the open pledges holding ``reward`` agreed to (one query)."""
    open_pledges = reward.pledges.filter(status__in=REWARD_HOLDING_STATUSES).exclude(shipping_country="")
    return list(
        open_pledges.values_list("shipping_country", "shipping_amount").annotate(pledges=Count("pk")).order_by()
    )


def rewards_shipping_rules(*, rewards) -> dict[int, list[tuple[str, int]]]:
    """Return {reward id: its (destination, cost) rules} for those of ``rewards`` that ship.

    One query, or none when no reward ships.
    """
    ids = [reward.pk for reward in rewards if reward.ships]
    rules: dict[int, list[tuple[str, int]]] = {pk: [] for pk in ids}
    if ids:
        rows = RewardShippingRule.objects.filter(reward_id__in=ids).order_by("id")
        for reward_id, destination, cost in rows.values_list("reward_id", "destination", "cost"):
            rules[reward_id].append((destination, cost))
    return rules


def reward_shipping_quote(*, reward: RewardTier | None, country: str) -> tuple[str, int]:
    """Return (country code, shipping cost) for a pledge on ``reward`` shipped to ``country``.

    ("", 0) for no reward or one that does not ship, without a query; for one that ships, one
    query of the rules that could cover the country, the most specific winning. Raises
    InvalidInput (field ``shipping_country``) for a country that is not an ISO 3166-1 alpha-2
    code, a missing country, or one the reward does not ship to.
    """
    code = country_normalise(country) if country else ""
    if code is None:
        raise InvalidInput(
            gettext("“%(country)s” is not a country code: use the two-letter ISO 3166-1 code, e.g. DE or US.")
            % {"country": str(country)[:40]},
            code="invalid_country",
            field="shipping_country",
        )
    if reward is None or not reward.ships:
        return "", 0
    if not code:
        raise InvalidInput(
            gettext("The “%(reward)s” reward is shipped: choose the country to ship it to.") % {"reward": reward.title},
            code="shipping_country_required",
            field="shipping_country",
        )
    rules = RewardShippingRule.objects.filter(reward_id=reward.pk, destination__in=destinations_covering(code))
    cost = shipping_cost_for(rules.values_list("destination", "cost"), code)
    if cost is None:
        raise InvalidInput(
            gettext(
                "The “%(reward)s” reward does not ship to %(country)s. Choose another reward or pledge without one."
            )
            % {"reward": reward.title, "country": country_name(code)},
            code="does_not_ship_there",
            field="shipping_country",
        )
    return code, cost


def campaign_updates(*, campaign: Campaign) -> list[CampaignUpdate]:
    """Return the campaign's updates, newest first (one query); callers hide backers-only bodies."""
    return list(CampaignUpdate.objects.filter(campaign_id=campaign.pk).order_by("-created_at", "-id"))


def campaign_comments(*, campaign: Campaign, limit: int = COMMENTS_ON_PAGE) -> list[Comment]:
    """Return the latest ``limit`` comments, oldest first, with their authors (one query)."""
    latest = (
        Comment.objects.filter(campaign_id=campaign.pk).select_related("author").order_by("-created_at", "-id")[:limit]
    )
    return list(reversed(latest))


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
    """Return the campaign if ``user`` may see it (``campaign_visible_get``); raise NotFound otherwise."""
    campaign = campaign_visible_get(user=user, pk=campaign_id)
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


def campaigns_succeeded_with_last_news() -> QuerySet[Campaign]:
    """Return succeeded campaigns annotated with ``last_news_at``: their latest update, or their success if later.

    The one statement of how long a campaign has been quiet, for the reminders and the staff's
    list of silent campaigns. Success is when the campaign's status became succeeded (its
    settlement, or its deadline, for a campaign with no recorded change).
    """
    succeeded_at = CampaignStatusChange.objects.filter(
        campaign_id=OuterRef("pk"), to_status=CampaignStatus.SUCCEEDED
    ).order_by("-created_at", "-id")
    latest_update = CampaignUpdate.objects.filter(campaign_id=OuterRef("pk")).order_by("-created_at", "-id")
    succeeded = Coalesce(Subquery(succeeded_at.values("created_at")[:1]), "settled_at", "deadline")
    return (
        Campaign.objects.filter(status=CampaignStatus.SUCCEEDED)
        .annotate(succeeded_at=succeeded, latest_update_at=Subquery(latest_update.values("created_at")[:1]))
        .annotate(last_news_at=Greatest(Coalesce("latest_update_at", "succeeded_at"), "succeeded_at"))
    )


def campaigns_silent_since(*, before: datetime) -> QuerySet[Campaign]:
    """Return succeeded campaigns whose last news (``campaigns_succeeded_with_last_news``) is ``before`` or older."""
    return campaigns_succeeded_with_last_news().filter(last_news_at__lte=before)


def campaigns_of_creator_public(*, creator, viewer) -> QuerySet[Campaign]:
    """Return the campaigns ``creator`` started that ``viewer`` may see (``campaigns_visible_to``), newest first."""
    return campaigns_visible_to(user=viewer).filter(initiator_id=creator.pk).order_by("-created_at", "-id")


def campaigns_backed_count(*, user) -> int:
    """Return how many campaigns ``user`` backs or backed (a held or released pledge), one query."""
    return (
        Campaign.objects.filter(pledges__backer_id=user.pk, pledges__status__in=BACKER_PLEDGE_STATUSES)
        .distinct()
        .count()
    )


COMMENT_THREADS_PER_PAGE = 20


def campaign_comment_threads(*, campaign: Campaign) -> QuerySet[Comment]:
    """Return the campaign's top-level comments, oldest first, each with its replies, to paginate.

    A page of them costs two queries (the comments with their authors, then all their replies
    with theirs) however many replies there are.
    """
    replies = Comment.objects.select_related("author").order_by("created_at", "id")
    return (
        Comment.objects.filter(campaign=campaign, parent__isnull=True)
        .select_related("author")
        .prefetch_related(Prefetch("replies", queryset=replies))
        .order_by("created_at", "id")
    )


def campaign_stretch_goals(*, campaign: Campaign, viewer=None, all_of_them: bool = False) -> list[StretchGoal]:
    """Return the stretch goals ``viewer`` may see, lowest first, each with ``to_go`` (what the total lacks).

    Everyone sees them once the launched campaign reached its goal, its initiator always (and
    ``all_of_them`` for the initiator's own pages). No query for a campaign whose row counts none.
    """
    is_initiator = viewer is not None and viewer.is_authenticated and viewer.pk == campaign.initiator_id
    shown = all_of_them or is_initiator or (campaign.launched_at is not None and campaign.goal_reached)
    if not campaign.stretch_goal_count or not shown:
        return []
    goals = list(StretchGoal.objects.filter(campaign=campaign).order_by("amount"))
    for goal in goals:
        goal.to_go = max(goal.amount - campaign.pledged_amount, 0)
    return goals


def campaign_addons(*, campaign: Campaign) -> list[AddOn]:
    """Return the campaign's add-ons, cheapest first; no query for a campaign whose row counts none."""
    if not campaign.addon_count:
        return []
    return list(AddOn.objects.filter(campaign_id=campaign.pk).order_by("price", "id"))

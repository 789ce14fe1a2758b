from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.tests.factories import pledge_held
from projects.tests.factories import CampaignFactory, CategoryFactory, LiveCampaignFactory
from risk.selectors import live_campaign_pool_cached

HOME = reverse("projects:home")


def titles(response) -> list[str]:
    return [c.title for c in response.context["page_obj"].object_list]


@pytest.mark.django_db
def test_home_shows_ending_soon_and_new_sections(client):
    now = timezone.now()
    LiveCampaignFactory(title="Last call", deadline=now + timedelta(hours=20), launched_at=now - timedelta(days=29))
    LiveCampaignFactory(title="Fresh idea", launched_at=now - timedelta(days=1), deadline=now + timedelta(days=29))
    LiveCampaignFactory(title="Old and slow", launched_at=now - timedelta(days=30), deadline=now + timedelta(days=20))

    response = client.get(HOME)

    assert [c.title for c in response.context["ending_soon"]] == ["Last call"]
    assert [c.title for c in response.context["new_campaigns"]] == ["Fresh idea"]
    assert titles(response) == ["Last call", "Old and slow", "Fresh idea"]
    page = response.content.decode()
    assert "Ending soon" in page
    assert "20 hours left" in page or "19 hours left" in page


@pytest.mark.django_db
def test_card_shows_progress_raised_percent_backers_and_time_left(client):
    LiveCampaignFactory(
        title="Solar kettle",
        goal=40_000,
        pledged_amount=30_000,
        backer_count=12,
        deadline=timezone.now() + timedelta(days=5, hours=-1),
    )
    page = client.get(HOME).content.decode()
    assert "$300.00</strong> raised" in page
    assert "75% of $400.00" in page
    assert "12 backers" in page
    assert "5 days left" in page
    assert 'aria-valuenow="75"' in page


@pytest.mark.django_db
def test_browse_by_category(client):
    games = CategoryFactory(name="Games", slug="games")
    LiveCampaignFactory(title="Dice tower", category=games)
    LiveCampaignFactory(title="Garden robot")

    response = client.get(HOME, {"category": "games"})

    assert titles(response) == ["Dice tower"]
    assert not response.context["show_sections"]
    assert response.context["category"] == games


@pytest.mark.django_db
def test_search_finds_words_in_title_summary_and_story(client):
    LiveCampaignFactory(title="Dice tower", summary="Roll in style.")
    LiveCampaignFactory(title="Garden robot", description="It waters the tomatoes while you sleep.")
    LiveCampaignFactory(title="Quiet keyboard")
    CampaignFactory(title="Draft tomatoes", description="tomatoes")

    assert titles(client.get(HOME, {"q": "tomatoes"})) == ["Garden robot"]
    assert titles(client.get(HOME, {"q": "dice"})) == ["Dice tower"]
    response = client.get(HOME, {"q": "nothing-like-this"})
    assert titles(response) == []
    assert "No live campaigns match" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="full-text search is PostgreSQL's")
def test_full_text_search_stems_and_ranks_title_matches_first():
    from projects.selectors import campaigns_discover

    LiveCampaignFactory(title="Bread oven", description="We are baking with wood.")
    LiveCampaignFactory(title="Baking school", description="Learn to bake.")
    found = [c.title for c in campaigns_discover(query="bakes")]
    assert found == ["Baking school", "Bread oven"]


@pytest.mark.django_db
def test_sort_orders(client):
    now = timezone.now()
    LiveCampaignFactory(title="A", goal=100, pledged_amount=50, backer_count=1, launched_at=now - timedelta(days=3))
    LiveCampaignFactory(title="B", goal=100, pledged_amount=90, backer_count=9, launched_at=now - timedelta(days=1))
    LiveCampaignFactory(title="C", goal=1000, pledged_amount=100, backer_count=5, launched_at=now - timedelta(days=2))

    assert titles(client.get(HOME, {"sort": "most_funded"})) == ["B", "A", "C"]
    assert titles(client.get(HOME, {"sort": "most_backed"})) == ["B", "C", "A"]
    assert titles(client.get(HOME, {"sort": "newest"})) == ["B", "C", "A"]
    assert client.get(HOME, {"sort": "bogus", "category": "nope"}).status_code == 200


@pytest.mark.django_db
def test_pagination_keeps_filters(client, settings):
    settings.DISCOVER_PAGE_SIZE = 2
    games = CategoryFactory(name="Games", slug="games")
    for n in range(5):
        LiveCampaignFactory(title=f"Game {n}", category=games, deadline=timezone.now() + timedelta(days=n + 1))
    first = client.get(HOME, {"category": "games"})
    assert titles(first) == ["Game 0", "Game 1"]
    assert "category=games&amp;page=2" in first.content.decode()
    assert titles(client.get(HOME, {"category": "games", "page": 3})) == ["Game 4"]
    assert titles(client.get(HOME, {"category": "games", "page": 99})) == ["Game 4"]


@pytest.mark.django_db
def test_user_content_on_cards_is_escaped(client):
    LiveCampaignFactory(title="<img src=x onerror=alert(1)>")
    page = client.get(HOME).content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x" in page


@pytest.mark.django_db
@pytest.mark.parametrize("logged_in", [False, True])
def test_discover_page_runs_a_constant_number_of_queries(client, django_assert_max_num_queries, logged_in):
    if logged_in:
        client.force_login(UserFactory())
    category = CategoryFactory()

    def grow(n):
        for _ in range(n):
            LiveCampaignFactory(
                category=category,
                launched_at=timezone.now() - timedelta(days=1),
                deadline=timezone.now() + timedelta(days=2),
            )

    grow(2)
    # The live campaigns recommendations rank come from the cache, loaded at most once a minute.
    live_campaign_pool_cached()
    # categories, count, page, ending soon, new, the cards' matches (+ session, user, their
    # pledges and the recommended campaigns when logged in)
    budget = 6 + (4 if logged_in else 0)
    with django_assert_max_num_queries(budget):
        client.get(HOME)
    grow(30)
    with django_assert_max_num_queries(budget):
        client.get(HOME)
    cache.clear()
    # Reloading the pool costs three queries (campaigns, risk scores, category names) however many are live.
    with django_assert_max_num_queries(budget + (3 if logged_in else 0)):
        client.get(HOME)
    with django_assert_max_num_queries(budget - 2):  # no sections when searching
        client.get(HOME, {"q": "campaign", "sort": "most_backed"})


@pytest.mark.django_db
def test_recommended_for_you_puts_the_backed_category_first_with_the_reason(client):
    games, art = CategoryFactory(name="Games", slug="games"), CategoryFactory(name="Art", slug="art")
    backer = UserFactory()
    for _ in range(3):
        pledge_held(campaign=LiveCampaignFactory(category=games), backer=backer)
    LiveCampaignFactory(category=art, title="Popular art", backer_count=500, pledged_amount=90_000)
    LiveCampaignFactory(category=games, title="Dice tower")
    client.force_login(backer)

    response = client.get(HOME)

    recommended = response.context["recommended"]
    assert recommended[0].title == "Dice tower"
    assert recommended[0].recommendation_reason == "because you backed 3 Games campaigns"
    page = response.content.decode()
    assert "Recommended for you" in page
    assert "Because you backed 3 Games campaigns" in page


@pytest.mark.django_db
def test_a_new_user_gets_popular_recommendations_and_visitors_none(client):
    LiveCampaignFactory(title="Popular", backer_count=500, pledged_amount=90_000)
    LiveCampaignFactory(title="Quiet")

    assert client.get(HOME).context["recommended"] == []
    assert "Recommended for you" not in client.get(HOME).content.decode()

    client.force_login(UserFactory())
    response = client.get(HOME)

    assert [c.title for c in response.context["recommended"]] == ["Popular", "Quiet"]
    assert all(c.recommendation_reason for c in response.context["recommended"])
    assert client.get(HOME, {"q": "popular"}).context["recommended"] == []


@pytest.mark.django_db
def test_search_uses_the_gin_index_on_postgresql():
    from django.db import connection

    from projects.models import Campaign
    from projects.selectors import _search

    if connection.vendor != "postgresql":
        pytest.skip("full-text search is PostgreSQL's")
    # The very expression the discover page searches; with sequential scans off, only an index
    # built on the same expression can answer it.
    query = _search(Campaign.objects.order_by(), "tea kettle").values("id")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = query.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "projects_campaign_search_gin" in plan

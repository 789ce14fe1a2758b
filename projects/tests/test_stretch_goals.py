"""Stretch goals: the initiator's rules, unlocking by beat's task, the backers' one e-mail, the page and the API."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from pledges.tests.factories import pledge_held
from projects.models import Campaign, CampaignStatus, StretchGoal
from projects.stretch_goals import (
    CLAIM_STALE_AFTER,
    stretch_goal_create,
    stretch_goal_delete,
    stretch_goal_emails_send_due,
    stretch_goal_update,
    stretch_goals_unlock_due,
)
from projects.tasks import unlock_stretch_goals
from projects.tests.factories import CampaignFactory, LiveCampaignFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # throttles and the page cache


def _count(campaign) -> int:
    return Campaign.objects.get(pk=campaign.pk).stretch_goal_count


def _add(campaign, amount, title="More colours", **extra):
    return stretch_goal_create(campaign=campaign, actor=campaign.initiator, amount=amount, title=title, **extra)


# --- the initiator's rules -------------------------------------------------------------------


def test_the_initiator_adds_edits_and_removes_a_goal_and_the_campaign_row_counts_them():
    campaign = CampaignFactory(goal=100_000)
    goal = _add(campaign, 150_000, description="Two more colours.")
    _add(campaign, 200_000, title="A hardcover edition")
    assert _count(campaign) == 2

    stretch_goal_update(goal=goal, actor=campaign.initiator, amount=160_000, title="Three more colours")
    goal.refresh_from_db()
    assert (goal.amount, goal.title) == (160_000, "Three more colours")

    stretch_goal_delete(goal=goal, actor=campaign.initiator)
    assert list(StretchGoal.objects.values_list("amount", flat=True)) == [200_000]
    assert _count(campaign) == 1


@pytest.mark.parametrize(
    ("amount", "title", "code"),
    [
        (100_000, "At the goal", "stretch_goal_not_above_goal"),
        (50_000, "Below the goal", "stretch_goal_not_above_goal"),
        (150_000, "Same amount again", "stretch_goal_duplicate"),
        (300_000, "x" * 121, "too_long"),
        (300_000, "   ", "required"),
        (0, "Nothing", "amount_not_positive"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(amount, title, code):
    campaign = CampaignFactory(goal=100_000)
    _add(campaign, 150_000)
    with pytest.raises(InvalidInput) as refused:
        _add(campaign, amount, title=title)
    assert refused.value.code == code
    assert StretchGoal.objects.count() == 1
    assert _count(campaign) == 1


def test_an_eleventh_goal_is_refused():
    campaign = CampaignFactory(goal=100_000)
    for n in range(1, 11):
        _add(campaign, 100_000 + n * 10_000, title=f"Goal {n}")
    with pytest.raises(InvalidInput) as refused:
        _add(campaign, 500_000, title="Goal 11")
    assert refused.value.code == "too_many_stretch_goals"
    assert StretchGoal.objects.count() == 10
    assert _count(campaign) == 10


def test_an_edit_to_a_duplicate_amount_or_a_long_description_changes_nothing():
    campaign = CampaignFactory(goal=100_000)
    first = _add(campaign, 150_000)
    _add(campaign, 200_000, title="Other")
    with pytest.raises(InvalidInput):
        stretch_goal_update(goal=first, actor=campaign.initiator, amount=200_000)
    with pytest.raises(InvalidInput):
        stretch_goal_update(goal=first, actor=campaign.initiator, description="x" * 1_001)
    first.refresh_from_db()
    assert (first.amount, first.description) == (150_000, "")


def test_only_the_initiator_may_and_not_while_in_review_or_after_the_end():
    campaign = CampaignFactory(goal=100_000)
    with pytest.raises(NotAllowed):
        stretch_goal_create(campaign=campaign, actor=UserFactory(), amount=150_000, title="Mine")
    for status in (CampaignStatus.IN_REVIEW, CampaignStatus.SUCCEEDED):
        Campaign.objects.filter(pk=campaign.pk).update(status=status)
        with pytest.raises(Conflict):
            _add(campaign, 150_000)
    assert not StretchGoal.objects.exists()


def test_after_launch_goals_are_added_and_edited_but_an_unlocked_one_keeps_its_amount_and_stays():
    campaign = LiveCampaignFactory(goal=1_000)
    reached = _add(campaign, 2_000, title="Reached")
    pledge_held(campaign=campaign, amount=5_000)
    stretch_goals_unlock_due()
    reached.refresh_from_db()
    later = _add(campaign, 9_000, title="Added while live")

    for amount in (1_500, 3_000):
        with pytest.raises(Conflict) as refused:
            stretch_goal_update(goal=reached, actor=campaign.initiator, amount=amount)
        assert refused.value.code == "stretch_goal_unlocked"
    with pytest.raises(Conflict):
        stretch_goal_delete(goal=reached, actor=campaign.initiator)
    stretch_goal_update(goal=reached, actor=campaign.initiator, title="Reached, renamed")
    stretch_goal_update(goal=later, actor=campaign.initiator, amount=8_000)

    reached.refresh_from_db()
    assert (reached.amount, reached.title) == (2_000, "Reached, renamed")
    assert _count(campaign) == 2


# --- unlocking and the e-mail ----------------------------------------------------------------


def test_beat_unlocks_a_reached_goal_once_and_its_backers_get_one_email_even_if_it_runs_twice():
    campaign = LiveCampaignFactory(goal=1_000)
    reached = _add(campaign, 8_000, title="Glow-in-the-dark box")
    not_yet = _add(campaign, 50_000, title="Far away")
    backers = [UserFactory(), UserFactory()]
    for backer in backers:
        pledge_held(campaign=campaign, backer=backer, amount=5_000)
    mail.outbox.clear()  # the receipts

    assert unlock_stretch_goals() == 2
    first_unlocked_at = StretchGoal.objects.get(pk=reached.pk).unlocked_at
    assert unlock_stretch_goals() == 0
    assert stretch_goals_unlock_due() == 0

    reached.refresh_from_db()
    not_yet.refresh_from_db()
    assert reached.unlocked_at == first_unlocked_at is not None
    assert reached.email_sent_at is not None
    assert reached.recipients == 2
    assert not_yet.unlocked_at is None
    assert sorted(m.to[0] for m in mail.outbox) == sorted(b.email for b in backers)
    assert all("Glow-in-the-dark box" in m.subject for m in mail.outbox)


def test_a_claim_left_by_a_dead_worker_is_taken_again_without_sending_twice():
    campaign = LiveCampaignFactory(goal=1_000)
    goal = _add(campaign, 2_000)
    pledge_held(campaign=campaign, amount=5_000)
    mail.outbox.clear()
    stretch_goals_unlock_due()
    assert stretch_goal_emails_send_due() == 1
    # As if the worker died after sending and before marking it sent.
    StretchGoal.objects.filter(pk=goal.pk).update(
        email_sent_at=None, email_claimed_at=timezone.now() - CLAIM_STALE_AFTER - timedelta(minutes=1)
    )
    assert stretch_goal_emails_send_due() == 0
    assert len(mail.outbox) == 1
    assert StretchGoal.objects.get(pk=goal.pk).email_sent_at is not None


def test_a_draft_is_never_unlocked_and_a_cancelled_pledge_does_not_lock_a_goal_again():
    draft = CampaignFactory(goal=1_000)
    _add(draft, 2_000)
    Campaign.objects.filter(pk=draft.pk).update(pledged_amount=5_000)
    assert stretch_goals_unlock_due() == 0

    live = LiveCampaignFactory(goal=1_000)
    goal = _add(live, 2_000)
    pledge_held(campaign=live, amount=5_000)
    stretch_goals_unlock_due()
    Campaign.objects.filter(pk=live.pk).update(pledged_amount=0)
    stretch_goals_unlock_due()
    assert StretchGoal.objects.get(pk=goal.pk).unlocked_at is not None


# --- the campaign page -----------------------------------------------------------------------


def test_the_page_shows_goals_once_the_goal_is_reached_with_how_far_to_go(client):
    campaign = LiveCampaignFactory(goal=1_000)
    _add(campaign, 2_000, title="Hidden until the goal")
    _add(campaign, 9_000, title="Further")
    pledge_held(campaign=campaign, amount=500)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Hidden until the goal" not in page

    pledge_held(campaign=campaign, amount=2_500)  # 3,000 raised
    stretch_goals_unlock_due()
    cache.clear()
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Stretch goals" in page
    assert "Hidden until the goal" in page
    assert "Unlocked" in page
    assert "$60.00 to go" in page


def test_the_initiator_always_sees_them_with_a_link_to_edit(client):
    campaign = LiveCampaignFactory(goal=100_000)
    _add(campaign, 200_000, title="Only the initiator sees me")
    client.force_login(campaign.initiator)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Only the initiator sees me" in page
    assert reverse("projects:campaign_stretch_goals", args=[campaign.slug]) in page


def test_a_campaign_with_goals_past_its_goal_costs_one_more_query(client, django_assert_num_queries):
    campaign = LiveCampaignFactory(goal=1_000)
    _add(campaign, 2_000)
    pledge_held(campaign=campaign, amount=5_000)
    cache.clear()
    # the five of a plain page with rewards' sections (test_campaign_page_sections), minus the
    # reward-only delivery record's two (no rewards), plus the stretch goals
    with django_assert_num_queries(4):
        client.get(campaign.get_absolute_url())


# --- the initiator's page --------------------------------------------------------------------


def test_the_editing_page_adds_edits_and_removes_and_shows_a_refusal(client):
    campaign = CampaignFactory(goal=100_000)
    client.force_login(campaign.initiator)
    url = reverse("projects:campaign_stretch_goals", args=[campaign.slug])
    assert client.get(url).status_code == 200
    assert client.get(reverse("projects:campaign_rewards", args=[campaign.slug])).content.decode().count(url) == 1

    response = client.post(url, {"amount": "1,000.00", "title": "At the goal"})
    assert response.status_code == 400
    assert "more than the campaign" in response.content.decode()
    assert not StretchGoal.objects.exists()

    client.post(url, {"amount": "1,500.00", "title": "Bigger box"})
    goal = StretchGoal.objects.get()
    assert goal.amount == 150_000
    edit = reverse("projects:stretch_goal_edit", args=[campaign.slug, goal.pk])
    client.post(edit, {f"goal-{goal.pk}-amount": "$1,750.00", f"goal-{goal.pk}-title": "Biggest box"})
    goal.refresh_from_db()
    assert (goal.amount, goal.title) == (175_000, "Biggest box")
    client.post(reverse("projects:stretch_goal_remove", args=[campaign.slug, goal.pk]))
    assert not StretchGoal.objects.exists()


def test_someone_else_gets_404_on_the_editing_page(client):
    campaign = CampaignFactory()
    client.force_login(UserFactory())
    assert client.get(reverse("projects:campaign_stretch_goals", args=[campaign.slug])).status_code == 404


# --- the API ---------------------------------------------------------------------------------


def test_the_api_lists_creates_updates_and_deletes_for_the_initiator_only():
    campaign = LiveCampaignFactory(goal=1_000)
    base = f"/api/v1/campaigns/{campaign.pk}/stretch-goals/"
    me = api_client(campaign.initiator)
    created = me.post(base, {"amount": 2_000, "title": "Stickers"}, format="json")
    assert created.status_code == 201, created.content
    goal_id = created.json()["id"]

    assert api_client().get(base).json() == []  # the goal is not reached yet
    assert [g["title"] for g in me.get(base).json()] == ["Stickers"]

    assert_error(api_client(UserFactory()).post(base, {"amount": 3_000, "title": "X"}, format="json"), 403)
    assert_error(me.post(base, {"amount": 1_000, "title": "At the goal"}, format="json"), 400)
    assert_error(me.post(base, {"amount": 3_000, "title": "x" * 121}, format="json"), 400)
    assert StretchGoal.objects.count() == 1

    updated = me.patch(f"{base}{goal_id}/", {"title": "Stickers and pins"}, format="json")
    assert updated.status_code == 200
    assert updated.json()["title"] == "Stickers and pins"

    pledge_held(campaign=campaign, amount=5_000)
    stretch_goals_unlock_due()
    listed = api_client().get(base).json()
    assert [(g["title"], g["unlocked"]) for g in listed] == [("Stickers and pins", True)]
    assert_error(me.delete(f"{base}{goal_id}/"), 409, "stretch_goal_unlocked")
    assert_error(me.patch(f"{base}{goal_id}/", {"amount": 4_000}, format="json"), 409, "stretch_goal_unlocked")

    second = me.post(base, {"amount": 9_000, "title": "Later"}, format="json").json()
    assert me.delete(f"{base}{second['id']}/").status_code == 204
    assert _count(campaign) == 1


def test_the_section_and_the_email_are_in_chinese_for_a_chinese_reader(client, settings):
    campaign = LiveCampaignFactory(goal=1_000)
    _add(campaign, 2_000, title="Stickers")
    _add(campaign, 9_000, title="Pins")
    backer = UserFactory(preferred_language="zh-hans")
    pledge_held(campaign=campaign, backer=backer, amount=5_000)
    mail.outbox.clear()
    unlock_stretch_goals()
    assert "解锁了扩展目标" in mail.outbox[0].subject
    assert "解锁了一个扩展目标" in mail.outbox[0].body

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "扩展目标" in page
    assert "已解锁" in page
    assert "还差 $40.00" in page
    client.force_login(campaign.initiator)
    page = client.get(reverse("projects:campaign_stretch_goals", args=[campaign.slug])).content.decode()
    assert "Stretch goals are amounts" not in page
    assert "扩展目标是高于" in page


def test_the_dashboard_links_to_the_editing_page(client):
    campaign = LiveCampaignFactory()
    client.force_login(campaign.initiator)
    page = client.get(reverse("dashboard:campaign_dashboard", args=[campaign.slug])).content.decode()
    assert reverse("projects:campaign_stretch_goals", args=[campaign.slug]) in page


def test_staff_see_the_goals_in_the_admin(admin_client):
    campaign = CampaignFactory(goal=100_000)
    _add(campaign, 150_000, title="Seen by staff")
    page = admin_client.get(reverse("admin:projects_stretchgoal_changelist")).content.decode()
    assert "Seen by staff" in page


def test_a_draft_goal_or_currency_change_that_the_stretch_goals_no_longer_fit_is_refused():
    from projects.services import campaign_update

    campaign = CampaignFactory(goal=100_000)
    _add(campaign, 150_000)
    with pytest.raises(InvalidInput) as refused:
        campaign_update(campaign=campaign, actor=campaign.initiator, goal=150_000)
    assert refused.value.code == "goal_above_stretch_goal"
    with pytest.raises(Conflict):
        campaign_update(campaign=campaign, actor=campaign.initiator, currency="EUR")
    campaign.refresh_from_db()
    assert (campaign.goal, campaign.currency) == (100_000, "USD")
    campaign_update(campaign=campaign, actor=campaign.initiator, goal=120_000)
    assert Campaign.objects.get(pk=campaign.pk).goal == 120_000

"""Campaign and discover pages kept for a few seconds for visitors who are not logged in."""

import re
import time
from datetime import timedelta

import pytest
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.services import pledge_cancel
from pledges.tests.factories import pledge_held
from projects.models import Campaign
from projects.services import campaign_update_create, comment_create
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaign_cancel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _page_cache_on(settings):
    settings.PAGE_CACHE_SECONDS = 10


TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _raise_total_behind_the_cache(campaign, amount):
    # The row changes behind the page cache's back: no pledge service says the figures moved.
    Campaign.objects.filter(pk=campaign.pk).update(pledged_amount=amount)


def test_a_visitor_may_see_a_total_a_few_seconds_old_a_logged_in_person_never(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PAGE_CACHE_SECONDS = 1
    campaign = LiveCampaignFactory(goal=100_000)
    assert "$0.00" in client.get(campaign.get_absolute_url()).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        pledge_held(campaign=campaign, amount=12_345)

    assert "$123.45" not in client.get(campaign.get_absolute_url()).content.decode()
    member = Client()
    member.force_login(UserFactory())
    assert "$123.45" in member.get(campaign.get_absolute_url()).content.decode()
    time.sleep(1.1)
    assert "$123.45" in client.get(campaign.get_absolute_url()).content.decode()


def test_a_quiet_campaign_page_is_served_from_its_copy_until_the_maximum_age(
    client, settings, django_assert_num_queries
):
    settings.PAGE_CACHE_SECONDS, settings.PAGE_CACHE_MAX_SECONDS = 1, 3
    campaign = LiveCampaignFactory(goal=100_000)
    client.get(campaign.get_absolute_url())
    _raise_total_behind_the_cache(campaign, 12_345)  # not through a pledge: the figures stand still
    time.sleep(1.05)

    with django_assert_num_queries(0):
        assert "$123.45" not in client.get(campaign.get_absolute_url()).content.decode()
    time.sleep(2)
    assert "$123.45" in client.get(campaign.get_absolute_url()).content.decode()


def test_a_pledge_shows_on_the_page_once_the_copy_is_page_cache_seconds_old(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PAGE_CACHE_SECONDS, settings.PAGE_CACHE_MAX_SECONDS = 1, 60
    campaign = LiveCampaignFactory(goal=100_000)
    client.get(campaign.get_absolute_url())

    with django_capture_on_commit_callbacks(execute=True):
        pledge = pledge_held(campaign=campaign, amount=4_200)
    time.sleep(1.05)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "$42.00" in page

    with django_capture_on_commit_callbacks(execute=True):
        pledge_cancel(pledge=pledge, actor=pledge.backer)
    time.sleep(1.05)
    assert "$42.00" not in client.get(campaign.get_absolute_url()).content.decode()


def test_with_page_cache_seconds_zero_every_visitor_gets_a_fresh_page(client, settings):
    settings.PAGE_CACHE_SECONDS = 0
    campaign = LiveCampaignFactory(goal=100_000)
    client.get(campaign.get_absolute_url())

    _raise_total_behind_the_cache(campaign, 12_345)

    assert "$123.45" in client.get(campaign.get_absolute_url()).content.decode()


def test_a_cancelled_campaign_shows_as_cancelled_at_once(client, staff, django_capture_on_commit_callbacks):
    campaign = LiveCampaignFactory(goal=100_000)
    assert "Back this project" in client.get(campaign.get_absolute_url()).content.decode()
    assert campaign.title in client.get("/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        campaign_cancel(campaign=campaign, actor=staff, reason="The initiator withdrew", enqueue_settlement=False)

    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Back this project" not in page
    assert "cancelled" in page.lower()
    assert campaign.title not in client.get("/").content.decode()


def test_a_new_update_and_comment_show_to_visitors_at_once(client, django_capture_on_commit_callbacks):
    campaign = LiveCampaignFactory(goal=100_000)
    backer = pledge_held(campaign=campaign, amount=5_000).backer
    client.get(campaign.get_absolute_url())

    with django_capture_on_commit_callbacks(execute=True):
        campaign_update_create(campaign=campaign, actor=campaign.initiator, title="Prototype ready", body="Pictures.")
    with django_capture_on_commit_callbacks(execute=True):
        comment_create(campaign=campaign, actor=backer, body="Looks great!")

    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Prototype ready" in page
    assert "Looks great!" in page


def test_each_visitor_gets_their_own_csrf_token_and_can_use_the_page_forms():
    campaign = LiveCampaignFactory(goal=100_000)
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)

    first_page = first.get(campaign.get_absolute_url()).content.decode()
    second_page = second.get(campaign.get_absolute_url()).content.decode()  # from the cache

    first_token, second_token = TOKEN.search(first_page).group(1), TOKEN.search(second_page).group(1)
    assert first_token != second_token
    assert "@@csrf-token@@" not in second_page
    switched = second.post("/i18n/setlang/", {"language": "zh-hans", "next": "/", "csrfmiddlewaretoken": second_token})
    assert switched.status_code == 302
    assert (
        first.post("/i18n/setlang/", {"language": "en", "next": "/", "csrfmiddlewaretoken": second_token}).status_code
        == 403
    )


def test_the_copy_is_kept_per_language(client):
    campaign = LiveCampaignFactory(goal=100_000)
    english = client.get(campaign.get_absolute_url()).content.decode()

    chinese = client.get(campaign.get_absolute_url(), headers={"accept-language": "zh-hans"}).content.decode()

    assert 'lang="en"' in english
    assert 'lang="zh-hans"' in chinese


def test_a_visitor_with_a_message_waiting_gets_a_fresh_page_with_the_message(client):
    campaign = LiveCampaignFactory(goal=100_000)
    client.get(campaign.get_absolute_url())
    # A message queued for this browser (kept in the messages cookie) must be shown, not a copy.
    storage = CookieStorage(RequestFactory().get("/"))
    client.cookies[storage.cookie_name] = storage._encode([Message(constants.INFO, "Your password is changed.")])

    assert "Your password is changed." in client.get(campaign.get_absolute_url()).content.decode()


def test_no_copy_of_a_live_campaign_is_served_after_its_deadline(client):
    campaign = LiveCampaignFactory(goal=100_000, deadline=timezone.now() + timedelta(seconds=1))
    assert "Back this project" in client.get(campaign.get_absolute_url()).content.decode()

    time.sleep(1.1)  # the close task has not run: the campaign is still "live" in the database

    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Back this project" not in page
    assert "Funding has ended" in page

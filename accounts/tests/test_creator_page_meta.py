"""The creator page describes itself to search engines in the creator's own words."""

import re

import pytest

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _meta_description(page: str) -> str:
    return re.search(r'<meta name="description" content="([^"]*)"', page).group(1)


def test_the_creator_page_description_is_the_creators_bio_escaped_and_cut_short(client):
    person = UserFactory(bio='I build <b>solar</b> kettles & "lamps".\n\n' + "More words. " * 30)
    description = _meta_description(client.get(f"/accounts/people/{person.username}/").content.decode())
    assert description.startswith("I build solar kettles &amp; &quot;lamps&quot;. More words.")
    assert len(description) < 200


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Campaigns created and projects backed by Ada on Crowdfund."), ("zh-hans", "Ada 在 Crowdfund 上发起")],
)
def test_without_a_bio_the_description_names_the_creator(client, language, expected):
    person = UserFactory(bio="", display_name="Ada")
    client.cookies["django_language"] = language
    page = client.get(f"/accounts/people/{person.username}/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert expected in _meta_description(page)

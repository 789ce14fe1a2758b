"""Avatars: a square picture in three sizes, refused with a message when the file is not a picture."""

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from projects.tests.factories import LiveCampaignFactory
from projects.tests.pictures import picture_bytes, upload

pytestmark = pytest.mark.django_db


def test_profile_page_uploads_an_avatar_shown_on_the_campaign_page(client):
    user = UserFactory(display_name="Ivy")
    client.force_login(user)
    response = client.post(reverse("accounts:avatar_upload"), {"avatar": upload(picture_bytes(900, 600))}, follow=True)
    assert "Your picture is saved." in response.content.decode()
    user.refresh_from_db()
    assert (user.avatar["widths"], user.avatar["width"], user.avatar["height"]) == ([64, 128, 256], 256, 256)
    campaign = LiveCampaignFactory(initiator=user)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert user.avatar["key"] in page


def test_a_text_file_named_png_is_refused_with_a_message(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(
        reverse("accounts:avatar_upload"), {"avatar": upload(b"not a picture" * 50, name="me.png")}, follow=True
    )
    assert "is not a JPEG, PNG or WebP picture" in response.content.decode()
    user.refresh_from_db()
    assert user.avatar == {}

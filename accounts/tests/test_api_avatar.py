"""The caller's avatar through the API: upload, replace, remove; a file that is no picture stores nothing."""

import pytest
from django.core.files.storage import default_storage

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client
from projects.tests.pictures import picture_bytes, upload

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/avatar/"


def _stored(descriptor: dict) -> bool:
    return default_storage.exists(f"{descriptor['key']}-{descriptor['widths'][0]}.webp")


def test_an_upload_sets_the_avatar_and_me_shows_its_sizes(django_capture_on_commit_callbacks):
    user = UserFactory()
    client = api_client(user)

    response = client.put(URL, {"image": upload(picture_bytes(900, 600))}, format="multipart")

    assert response.status_code == 200, response.content
    avatar = response.json()["avatar"]
    assert (avatar["width"], avatar["height"]) == (256, 256)
    assert [size["width"] for size in avatar["sizes"]] == [64, 128, 256]
    assert client.get("/api/v1/me/").json()["avatar"] == avatar

    user.refresh_from_db()
    first = user.avatar
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.put(
                URL, {"image": upload(picture_bytes(300, 300, "PNG"), name="b.png")}, format="multipart"
            ).status_code
            == 200
        )
    user.refresh_from_db()
    assert user.avatar["key"] != first["key"]


def test_delete_removes_the_avatar_and_its_files(django_capture_on_commit_callbacks):
    user = UserFactory()
    client = api_client(user)
    client.put(URL, {"image": upload(picture_bytes())}, format="multipart")
    user.refresh_from_db()
    descriptor = user.avatar
    assert _stored(descriptor)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(URL)

    assert response.status_code == 200
    assert response.json()["avatar"] is None
    user.refresh_from_db()
    assert user.avatar == {}
    assert not _stored(descriptor)
    assert client.delete(URL).status_code == 200  # nothing to remove: still fine


@pytest.mark.parametrize(
    ("data", "name"),
    [(b"not a picture" * 50, "me.jpg"), (b"", "empty.png"), (b"<svg onload='alert(1)'/>", "x.svg")],
)
def test_a_file_that_is_no_picture_is_refused_with_a_400_and_nothing_is_stored(data, name):
    user = UserFactory()

    response = api_client(user).put(URL, {"image": upload(data, name=name)}, format="multipart")

    assert response.status_code == 400, response.content
    assert response.json()["code"].startswith("image_")
    user.refresh_from_db()
    assert user.avatar == {}


def test_the_avatar_needs_a_login_and_a_file():
    assert api_client(None).put(URL, {}, format="multipart").status_code in (401, 403)
    response = api_client(UserFactory()).put(URL, {}, format="multipart")
    assert response.status_code == 400

"""API token authentication (crowdfund_site/api/authentication.py): one query compiled once, nothing cached.

What a client notices: a good token signs it in as its user, with that user as the database has
it now; a token deleted (revoked), or the user deactivated, is refused on the very next request.
"""

import pytest
from rest_framework.authtoken.models import Token

from accounts.tests.factories import UserFactory
from crowdfund_site.api.authentication import token_with_user_get
from crowdfund_site.api.testing import api_client, assert_error

pytestmark = pytest.mark.django_db


def test_a_token_signs_its_user_in():
    user = UserFactory(display_name="Ada")

    response = api_client(user).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["username"] == user.username
    assert response.json()["display_name"] == "Ada"


def test_a_deleted_token_is_refused_on_the_next_request():
    user = UserFactory()
    client = api_client(user)
    assert client.get("/api/v1/me/").status_code == 200

    Token.objects.filter(user=user).delete()

    body = assert_error(client.get("/api/v1/me/"), 401)
    assert body["detail"] == "Invalid token."


def test_a_deactivated_user_is_refused_on_the_next_request():
    user = UserFactory()
    client = api_client(user)
    assert client.get("/api/v1/me/").status_code == 200

    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no signal: nothing to invalidate

    body = assert_error(client.get("/api/v1/me/"), 401)
    assert body["detail"] == "User inactive or deleted."


def test_a_changed_user_is_seen_on_the_next_request():
    user = UserFactory(is_staff=False)
    client = api_client(user)
    assert client.get("/api/v1/me/").json()["is_staff"] is False

    type(user).objects.filter(pk=user.pk).update(is_staff=True, display_name="Grace")

    body = client.get("/api/v1/me/").json()
    assert body["is_staff"] is True
    assert body["display_name"] == "Grace"


def test_an_unknown_or_malformed_token_is_refused():
    UserFactory()
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert assert_error(client.get("/api/v1/me/"), 401)["detail"] == "Invalid token."
    client.credentials(HTTP_AUTHORIZATION="Token two words")
    assert_error(client.get("/api/v1/me/"), 401)


def test_the_token_and_user_are_what_the_orm_reads():
    # Every column, through Django's converters on this database: JSON, dates, booleans, text.
    user = UserFactory(avatar={"key": "avatars/1", "sizes": [64, 128]}, bio="引言", email_verified=True)
    token = Token.objects.create(user=user)
    expected = Token.objects.select_related("user").get(key=token.key)

    got = token_with_user_get(token.key)

    assert got is not None
    assert not got._state.adding
    assert not got.user._state.adding
    for field in Token._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(expected, field.attname), field.name
    for field in type(user)._meta.concrete_fields:
        assert getattr(got.user, field.attname) == getattr(expected.user, field.attname), field.name
    assert got.user.avatar == {"key": "avatars/1", "sizes": [64, 128]}
    assert got.user.date_joined.tzinfo is not None


def test_no_token_no_user():
    assert token_with_user_get("no-such-key") is None

"""Hostile request bodies on every API operation that takes one: a 400 in the API's error format, never a 500."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.tests.factories import StaffFactory
from crowdfund_site.api.parsers import MAX_DEPTH
from crowdfund_site.api.testing import api_client, assert_error
from pledges.models import Pledge
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db

DEEP = 100_000


def _deep_list(value: str = "1", depth: int = DEEP) -> str:
    return "[" * depth + value + "]" * depth


def _deep_object(depth: int = 50_000) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HOSTILE_BODIES = {
    "deep_list": _deep_list(),
    "deep_list_as_a_field": '{"username": ' + _deep_list("") + ', "password": "x"}',
    "deep_amount": '{"amount": ' + _deep_list(depth=50_000) + ', "currency": "USD", "payment_token": "tok_visa"}',
    "deep_object": _deep_object(),
    "just_over_the_limit": _deep_list(depth=MAX_DEPTH + 1),
}


def _writing_operations() -> list[tuple[str, str, bool]]:
    """Return (path, method, takes a JSON body) for every POST, PUT and PATCH in the API's schema.

    Uploads take multipart/form-data only: JSON there is refused before parsing (415).
    """
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (path, method, "application/json" in operation.get("requestBody", {}).get("content", {}))
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in {"post", "put", "patch"}
    )


@pytest.fixture
def staff_with_objects():
    """A superuser who backs a live campaign (with a reward): every operation reaches its body."""
    staff = StaffFactory()
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign)
    pledge = pledge_held(campaign=campaign, backer=staff)
    return staff, {"pk": campaign.pk, "reward_pk": reward.pk, "pledge_pk": pledge.pk}


def _url(path: str, ids: dict) -> str:
    pk = ids["pledge_pk"] if path.startswith("/api/v1/pledges/") else ids["pk"]
    # No milestone, comment, stretch goal, add-on or matching pool exists here: the body is refused before it is
    # looked up.
    path = (
        path.replace("{milestone_pk}", "1")
        .replace("{comment_pk}", "1")
        .replace("{goal_pk}", "1")
        .replace("{addon_pk}", "1")
        .replace("{slug}", "no-such-pool")
    )
    return path.replace("{id}", str(pk)).replace("{reward_pk}", str(ids["reward_pk"]))


def test_every_operation_with_a_body_is_covered():
    operations = {(path, method) for path, method, has_body in _writing_operations() if has_body}
    assert ("/api/v1/auth/token/", "post") in operations
    assert ("/api/v1/campaigns/{id}/pledges/", "post") in operations
    assert len(operations) >= 10


@pytest.mark.parametrize("shape", sorted(HOSTILE_BODIES))
def test_deeply_nested_json_is_a_400_on_every_operation(staff_with_objects, shape):
    staff, ids = staff_with_objects
    client = api_client(staff)
    for n, (path, method, has_body) in enumerate(_writing_operations()):
        response = getattr(client, method)(
            _url(path, ids), HOSTILE_BODIES[shape], content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"k-{n}"
        )
        if has_body:
            body = assert_error(response, 400, "parse_error")
            assert "nested deeper" in body["detail"], (path, method, body)
        else:  # an operation without a (JSON) body may ignore it, or refuse it: never a server error
            assert response.status_code < 500, (path, method, response.content[:300])
    # Nothing was charged, and every idempotency key was given back.
    assert Pledge.objects.count() == 1


def test_the_token_endpoint_refuses_deep_json_without_credentials():
    response = api_client().post(
        "/api/v1/auth/token/", HOSTILE_BODIES["deep_list_as_a_field"], content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


MALFORMED_BODIES = {
    "invalid_utf8": (b'{"amount": "\xff\xfe"}', "application/json"),
    "integer_of_5000_digits": ('{"amount": 1' + "0" * 5_000 + "}", "application/json"),
    "nan": ('{"amount": NaN}', "application/json"),
    "truncated": ('{"amount": [1, 2', "application/json"),
}


@pytest.mark.parametrize("shape", sorted(MALFORMED_BODIES))
def test_malformed_json_is_a_400_parse_error(live_campaign, backer, shape):
    body, content_type = MALFORMED_BODIES[shape]
    response = api_client(backer).post(
        f"/api/v1/campaigns/{live_campaign.pk}/pledges/", body, content_type=content_type, HTTP_IDEMPOTENCY_KEY=shape
    )
    assert_error(response, 400, "parse_error")
    assert not Pledge.objects.exists()


def test_json_as_deep_as_the_limit_is_parsed_and_refused_by_the_serializer(live_campaign, backer):
    amount = _deep_list(depth=MAX_DEPTH - 1)
    response = api_client(backer).post(
        f"/api/v1/campaigns/{live_campaign.pk}/pledges/",
        '{"amount": ' + amount + ', "currency": "USD", "payment_token": "tok_visa"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="at-the-limit",
    )
    body = assert_error(response, 400, "invalid")
    assert "amount" in body["fields"]

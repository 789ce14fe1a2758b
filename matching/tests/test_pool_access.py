"""Who gets a 404 and who a 403: a pool unknown or not public is a 404, a public pool one may not manage a 403."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from matching.models import PoolMode
from matching.services import pool_create
from matching.tests.factories import funded_pool, sponsor_create
from projects.tests.factories import LiveCampaignFactory
from projects.tests.pictures import upload

pytestmark = pytest.mark.django_db


def _unfunded_pool():
    sponsor, now = sponsor_create(), timezone.now()
    return pool_create(
        actor=sponsor,
        sponsor=sponsor,
        name="Not yet paid",
        currency="USD",
        amount=10_000,
        mode=PoolMode.PRO_RATA,
        starts_at=now,
        ends_at=now + timedelta(days=30),
        campaigns=[LiveCampaignFactory()],
    )


def _round_body():
    now = timezone.now()
    return {"starts_at": (now + timedelta(days=1)).isoformat(), "ends_at": (now + timedelta(days=2)).isoformat()}


def test_a_pool_not_public_is_a_404_even_for_its_sponsor(client):
    pool = _unfunded_pool()
    api, base = api_client(pool.sponsor), f"/api/v1/matching/pools/{pool.slug}"
    assert_error(api.get(f"{base}/"), 404)
    assert_error(api.post(f"{base}/rounds/", _round_body(), format="json", HTTP_IDEMPOTENCY_KEY="r"), 404)
    assert_error(api.post(f"{base}/leftover/", {"choice": "refund"}, format="json"), 404)
    assert_error(api.put(f"{base}/logo/", {"logo": upload()}, format="multipart"), 404)
    client.force_login(pool.sponsor)
    for name in ("matching:pool_detail", "matching:pool_dashboard"):
        assert client.get(reverse(name, args=[pool.slug])).status_code == 404


def test_a_public_pool_someone_else_runs_is_a_403_on_every_action(client):
    pool = funded_pool(campaigns=[LiveCampaignFactory()])
    stranger = UserFactory()
    api = api_client(stranger)
    base = f"/api/v1/matching/pools/{pool.slug}"
    assert_error(
        api.post(f"{base}/rounds/", _round_body(), format="json", HTTP_IDEMPOTENCY_KEY="r"), 403, "not_allowed"
    )
    assert_error(api.post(f"{base}/close/", None, format="json", HTTP_IDEMPOTENCY_KEY="c"), 403, "not_allowed")
    assert_error(api.post(f"{base}/leftover/", {"choice": "refund"}, format="json"), 403, "not_allowed")
    assert_error(api.put(f"{base}/logo/", {"logo": upload()}, format="multipart"), 403, "not_allowed")
    client.force_login(stranger)
    assert client.get(reverse("matching:pool_dashboard", args=[pool.slug])).status_code == 403
    assert (
        client.post(reverse("matching:pool_leftover_choose", args=[pool.slug]), {"choice": "refund"}).status_code == 403
    )
    assert client.post(reverse("matching:pool_logo_upload", args=[pool.slug]), {"logo": upload()}).status_code == 403
    pool.refresh_from_db()
    assert (pool.rounds.count(), pool.logo, pool.closed_at) == (0, {}, None)


def test_staff_manage_a_sponsors_pool(client):
    pool = funded_pool(campaigns=[LiveCampaignFactory()])
    client.force_login(StaffFactory())
    assert client.get(reverse("matching:pool_dashboard", args=[pool.slug])).status_code == 200

"""The matching API: a pool's published results and the live estimate, through the test client."""

import pytest

from matching.tests.test_pages import paid_round, running_round  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_a_pool_and_its_published_round_through_the_api(client, paid_round):  # noqa: F811
    pool, matching_round, a, _b = paid_round
    data = client.get(f"/api/v1/matching/pools/{pool.slug}/").json()
    assert (data["name"], data["mode"], data["amount"], data["left"]) == (pool.name, "quadratic", 100_000, 0)
    (round_data,) = data["rounds"]
    assert round_data["id"] == matching_round.pk
    assert {r["campaign"]: r["matched"] for r in round_data["results"]}[a.pk] == 75_000


def test_an_unknown_pool_is_a_404_in_the_api_error_shape(client):
    response = client.get("/api/v1/matching/pools/nope/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_estimate_through_the_api(client, running_round):  # noqa: F811
    pool, _a, b = running_round
    data = client.get(f"/api/v1/campaigns/{b.pk}/match-estimate/", {"amount": "1000"}).json()
    (estimate,) = data["estimates"]
    assert (estimate["pool"], estimate["high"]) == (pool.slug, 13_705)
    assert 0 < estimate["low"] < estimate["high"]
    bad = client.get(f"/api/v1/campaigns/{b.pk}/match-estimate/", {"amount": "ten"})
    assert bad.status_code == 400
    assert "amount" in bad.content.decode()


def test_the_sponsor_chooses_what_the_pool_leaves_through_the_api(client, paid_round):  # noqa: F811
    from accounts.tests.factories import UserFactory
    from matching.tests.factories import funded_pool

    pool, _round, _a, _b = paid_round
    autumn = funded_pool(sponsor=pool.sponsor, name="Autumn fund", campaigns=[_a])
    url = f"/api/v1/matching/pools/{pool.slug}/leftover/"
    assert client.post(url, {"choice": "refund"}, content_type="application/json").status_code in (401, 403)
    client.force_login(UserFactory())
    assert client.post(url, {"choice": "refund"}, content_type="application/json").status_code == 404
    assert client.post(url, {"choice": "burn"}, content_type="application/json").status_code == 400
    client.force_login(pool.sponsor)
    answer = client.post(url, {"choice": "roll_over", "next_pool": autumn.slug}, content_type="application/json")
    assert answer.status_code == 200
    assert answer.json() == {"choice": "roll_over", "next_pool": autumn.slug}
    refused = client.post(url, {"choice": "roll_over", "next_pool": pool.slug}, content_type="application/json")
    assert (refused.status_code, refused.json()["code"]) == (400, "next_pool_itself")
    assert client.post(url, {"choice": "burn"}, content_type="application/json").status_code == 400
    pool.refresh_from_db()
    assert pool.next_pool_id == autumn.pk

"""The matching API through the test client: pools and rounds read, the estimate, sponsors' actions."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from escrow.models import GatewayOperation, OperationKind
from matching.models import Pool
from matching.selectors import pool_balance
from matching.tests.test_pages import paid_round, running_round  # noqa: F401 - fixtures
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.checks import money_state
from settlement.verification import ledger_verify

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
    from matching.tests.factories import funded_pool

    pool, _round, _a, _b = paid_round
    autumn = funded_pool(sponsor=pool.sponsor, name="Autumn fund", campaigns=[_a])
    url = f"/api/v1/matching/pools/{pool.slug}/leftover/"
    assert client.post(url, {"choice": "refund"}, content_type="application/json").status_code in (401, 403)
    client.force_login(UserFactory())
    # A public pool someone else runs: 403, as for its rounds and closing; an unknown one: 404.
    assert_error(client.post(url, {"choice": "refund"}, content_type="application/json"), 403, "not_allowed")
    unknown = client.post(
        "/api/v1/matching/pools/nope/leftover/", {"choice": "refund"}, content_type="application/json"
    )
    assert_error(unknown, 404)
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


# --- Pools and rounds read ----------------------------------------------------------------------


def test_the_pools_list_shows_funded_pools_filtered_by_status(client, paid_round):  # noqa: F811
    from matching.tests.factories import funded_pool, sponsor_create

    pool, _round, a, _b = paid_round
    later = funded_pool(
        sponsor=sponsor_create(),
        name="Next year's fund",
        campaigns=[a],
        starts_at=timezone.now() + timedelta(days=300),
        ends_at=timezone.now() + timedelta(days=400),
    )
    data = client.get("/api/v1/matching/pools/").json()
    assert {p["slug"]: (p["status"], p["left"]) for p in data["results"]} == {
        pool.slug: ("running", 0),
        later.slug: ("upcoming", 100_000),
    }
    upcoming = client.get("/api/v1/matching/pools/", {"status": "upcoming"}).json()
    assert [p["slug"] for p in upcoming["results"]] == [later.slug]
    assert client.get("/api/v1/matching/pools/", {"status": "closed"}).json()["results"] == []
    assert_error(client.get("/api/v1/matching/pools/", {"status": "someday"}), 400)
    assert_error(client.get("/api/v1/matching/pools/", {"status": ""}), 400)


def test_a_round_through_the_api_with_its_rules_and_published_results(client, paid_round):  # noqa: F811
    pool, matching_round, a, b = paid_round
    data = client.get(f"/api/v1/matching/rounds/{matching_round.pk}/").json()
    assert (data["status"], data["pool"]["slug"], data["budget"]) == ("paid", pool.slug, 100_000)
    assert (data["rules"]["mode"], data["rules"]["per_campaign_cap"]) == ("quadratic", 100_000)
    assert {r["campaign"]: r["matched"] for r in data["results"]} == {a.pk: 75_000, b.pk: 25_000}


def test_an_open_round_shows_no_results_and_an_unknown_one_is_a_404(client, running_round):  # noqa: F811
    pool, _a, _b = running_round
    (matching_round,) = pool.rounds.all()
    data = client.get(f"/api/v1/matching/rounds/{matching_round.pk}/").json()
    assert (data["status"], data["results"], data["budget"]) == ("open", [], None)
    assert_error(client.get("/api/v1/matching/rounds/999999/"), 404, "not_found")


# --- Sponsors' actions --------------------------------------------------------------------------


def _pool_body(campaign, **changes) -> dict:
    now = timezone.now()
    body = {
        "name": "Harbour fund",
        "currency": "USD",
        "amount": 50_000,
        "mode": "pro_rata",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "per_campaign_cap": 20_000,
        "campaigns": [campaign.pk],
        "payment_token": "tok_visa",
    }
    return {**body, **changes}


def _post(client, url, body, key):
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_sponsor_puts_up_a_pool_charged_once_whatever_is_retried():
    from matching.tests.factories import sponsor_create

    sponsor, campaign = sponsor_create(), LiveCampaignFactory()
    client, body = api_client(sponsor), _pool_body(campaign)
    answer = _post(client, "/api/v1/matching/pools/", body, "harbour-1")
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert (data["name"], data["mode"], data["amount"], data["left"]) == ("Harbour fund", "pro_rata", 50_000, 50_000)
    pool = Pool.objects.get()
    assert (pool.sponsor, pool.funded_at is not None, pool_balance(pool=pool)) == (sponsor, True, 50_000)
    assert list(pool.campaigns.all()) == [campaign]

    before = money_state()
    again = _post(client, "/api/v1/matching/pools/", body, "harbour-1")
    assert (again.status_code, again.json()["slug"]) == (201, data["slug"])
    other = _post(client, "/api/v1/matching/pools/", {**body, "amount": 60_000}, "harbour-1")
    assert_error(other, 409, "idempotency_key_reused")
    assert money_state() == before
    assert Pool.objects.count() == 1
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1
    assert ledger_verify() == []


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"amount": 0}, 400, "invalid"),
        ({"per_campaign_cap": 50_001}, 400, "cap_above_pool"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, 400, "ends_before_start"),
        ({"campaigns": []}, 400, "eligibility_required"),
        ({"campaigns": [999_999]}, 400, "invalid_campaign"),
    ],
)
def test_a_refused_pool_request_changes_no_money(changes, status, code):
    from matching.tests.factories import sponsor_create

    sponsor, campaign = sponsor_create(), LiveCampaignFactory()
    before = money_state()
    response = _post(api_client(sponsor), "/api/v1/matching/pools/", _pool_body(campaign, **changes), "refused")
    assert_error(response, status, code)
    assert money_state() == before
    assert not Pool.objects.filter(funded_at__isnull=False).exists()
    assert ledger_verify() == []


def test_a_declined_card_funds_nothing_and_its_retry_is_declined_again(client):
    from matching.tests.factories import sponsor_create

    sponsor, campaign = sponsor_create(), LiveCampaignFactory()
    body = _pool_body(campaign, payment_token="tok_chargeDeclined")
    before = money_state()
    assert_error(_post(api_client(sponsor), "/api/v1/matching/pools/", body, "declined"), 402)
    assert_error(_post(api_client(sponsor), "/api/v1/matching/pools/", body, "declined"), 402)
    after = money_state()
    assert (after["ledger_transactions"], after["ledger_entries"]) == (
        before["ledger_transactions"],
        before["ledger_entries"],
    )
    assert [op[:2] for op in after["gateway_operations"]] == [(f"charge:pool:{Pool.objects.get().pk}", "declined")]
    assert client.get("/api/v1/matching/pools/").json()["results"] == []  # an unfunded pool is nobody's to see
    assert ledger_verify() == []


def test_a_gateway_failure_is_retried_under_the_same_key_into_the_same_pool():
    from matching.tests.factories import sponsor_create

    sponsor, campaign = sponsor_create(), LiveCampaignFactory()
    client, body = api_client(sponsor), _pool_body(campaign, payment_token="tok_processingError")
    assert_error(_post(client, "/api/v1/matching/pools/", body, "flaky"), 503)
    assert Pool.objects.filter(funded_at__isnull=False).count() == 0
    answer = _post(client, "/api/v1/matching/pools/", body, "flaky")
    assert answer.status_code == 201, answer.content
    pool = Pool.objects.get()  # one pool, charged once under its own key, funded by the retry
    assert (pool_balance(pool=pool), answer.json()["slug"]) == (50_000, pool.slug)
    assert GatewayOperation.objects.get(kind=OperationKind.CHARGE).attempts == 2
    assert ledger_verify() == []


def test_only_sponsors_or_staff_put_up_pools_and_never_on_their_own_campaign(staff):
    from matching.tests.factories import sponsor_create

    sponsor, campaign = sponsor_create(), LiveCampaignFactory()
    not_a_sponsor = UserFactory()
    assert_error(_post(api_client(), "/api/v1/matching/pools/", _pool_body(campaign), "k"), 401)
    refused = _post(api_client(not_a_sponsor), "/api/v1/matching/pools/", _pool_body(campaign), "k")
    assert_error(refused, 403, "not_a_sponsor")
    for_someone = _pool_body(campaign, sponsor=sponsor.username)
    assert_error(_post(api_client(not_a_sponsor), "/api/v1/matching/pools/", for_someone, "k"), 403, "not_allowed")
    own = _pool_body(LiveCampaignFactory(initiator=sponsor))
    assert_error(_post(api_client(sponsor), "/api/v1/matching/pools/", own, "k"), 403, "own_campaign")
    assert_error(_post(api_client(sponsor), "/api/v1/matching/pools/", _pool_body(campaign), ""), 400)
    assert not Pool.objects.exists()
    # Staff put one up on the sponsor's behalf: the sponsor's pool.
    made = _post(api_client(staff), "/api/v1/matching/pools/", for_someone, "for-a-sponsor")
    assert made.status_code == 201, made.content
    assert Pool.objects.get().sponsor == sponsor


def test_the_sponsor_opens_a_round_on_their_pool_and_nobody_else_can(running_round):  # noqa: F811
    pool, _a, _b = running_round
    url = f"/api/v1/matching/pools/{pool.slug}/rounds/"
    now = timezone.now()
    body = {"starts_at": (now + timedelta(days=2)).isoformat(), "ends_at": (now + timedelta(days=9)).isoformat()}
    rounds = pool.rounds.count()
    assert_error(_post(api_client(UserFactory()), url, body, "r1"), 403, "not_allowed")
    backwards = {"starts_at": body["ends_at"], "ends_at": body["starts_at"]}
    assert_error(_post(api_client(pool.sponsor), url, backwards, "r1"), 400, "ends_before_start")
    too_long = {**body, "ends_at": (pool.ends_at + timedelta(days=1)).isoformat()}
    assert_error(_post(api_client(pool.sponsor), url, too_long, "r1"), 400, "round_outside_pool")
    assert_error(_post(api_client(pool.sponsor), "/api/v1/matching/pools/nope/rounds/", body, "r1"), 404)
    assert pool.rounds.count() == rounds

    client = api_client(pool.sponsor)
    answer = _post(client, url, body, "r1")
    assert answer.status_code == 201, answer.content
    assert (answer.json()["status"], answer.json()["pool"]["slug"]) == ("open", pool.slug)
    assert _post(client, url, body, "r1").json()["id"] == answer.json()["id"]  # a retry opens no second round
    other = {**body, "ends_at": (now + timedelta(days=10)).isoformat()}
    assert_error(_post(client, url, other, "r1"), 409, "idempotency_key_reused")
    assert pool.rounds.count() == rounds + 1


def test_a_pool_is_closed_through_the_api_only_after_its_end(paid_round):  # noqa: F811
    pool, _round, _a, _b = paid_round
    url = f"/api/v1/matching/pools/{pool.slug}/close/"
    assert_error(_post(api_client(UserFactory()), url, None, "c1"), 403, "not_allowed")
    assert_error(_post(api_client(pool.sponsor), url, None, "c1"), 409, "pool_not_over")
    pool.refresh_from_db()
    assert pool.closed_at is None


def test_the_pool_list_detail_and_rounds_name_a_pool_alike(client, paid_round):  # noqa: F811
    pool, matching_round, _a, _b = paid_round
    named = {"slug": pool.slug, "name": pool.name, "sponsor": pool.sponsor.public_name, "logo": None}
    listed = client.get("/api/v1/matching/pools/").json()["results"][0]
    detail = client.get(f"/api/v1/matching/pools/{pool.slug}/").json()
    round_pool = client.get(f"/api/v1/matching/rounds/{matching_round.pk}/").json()["pool"]
    assert round_pool == named
    shared = {"description", "mode", "currency", "amount", "left", "starts_at", "ends_at", "accepts_applications"}
    for data in (listed, detail):
        assert {k: data[k] for k in named} == named
        assert shared <= set(data)
    assert (listed["status"], detail["accepts_applications"]) == ("running", False)

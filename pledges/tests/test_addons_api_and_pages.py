"""Add-ons through the interfaces: the pledge and change API, the initiator's add-on API, the pages and the CSV."""

import csv
import io

import pytest
from django.core.cache import cache
from django.db import connection

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client
from pledges.models import Pledge
from pledges.tests.test_pledge_statements import STATEMENTS_PER_PLEDGE, statements_counted
from projects.addons import addon_create
from projects.models import AddOn
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.checks import invariant_problems, money_state

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def make_addon(campaign, *, price=500, limit=None, title="Sticker pack") -> AddOn:
    return addon_create(campaign=campaign, actor=campaign.initiator, title=title, price=price, quantity_limit=limit)


def post_pledge(client, campaign, *, key="key-1", **body):
    data = {"amount": 2_000, "currency": campaign.currency, "payment_token": "tok_visa", **body}
    return client.post(f"/api/v1/campaigns/{campaign.pk}/pledges/", data, format="json", HTTP_IDEMPOTENCY_KEY=key)


def post_change(client, pledge_id, *, key="change-1", **body):
    return client.post(f"/api/v1/pledges/{pledge_id}/change/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_api_pledges_with_add_ons_and_changes_their_quantities(backer, live_campaign):
    sticker = make_addon(live_campaign, price=500)
    client = api_client(backer)

    response = post_pledge(client, live_campaign, addons=[{"addon": sticker.pk, "quantity": 3}])

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["addons_amount"]) == (3_500, 1_500)
    assert body["addons"] == [{"addon": sticker.pk, "title": "Sticker pack", "quantity": 3, "unit_price": 500}]

    response = post_change(client, body["id"], addons=[{"addon": sticker.pk, "quantity": 1}])

    assert response.status_code == 200, response.content
    assert (response.json()["amount"], response.json()["addons_amount"]) == (2_500, 500)
    listed = client.get("/api/v1/pledges/").json()["results"][0]
    assert listed["addons"][0]["quantity"] == 1
    assert invariant_problems() == []


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ({"quantity": 11}, "addon_quantity_above_limit"),
        ({"quantity": -2}, "invalid"),  # the serializer's own bound, with the field named
        ({"addon": "unknown", "quantity": 1}, "invalid_addon"),
        ({"addon": "other", "quantity": 1}, "invalid_addon"),
    ],
)
def test_bad_add_ons_are_a_clear_400_and_change_nothing(backer, live_campaign, item, code):
    sticker = make_addon(live_campaign)
    other = make_addon(LiveCampaignFactory(), title="Elsewhere")
    addon_id = {"unknown": other.pk + 1_000, "other": other.pk}.get(item.get("addon"), sticker.pk)
    client = api_client(backer)
    held = post_pledge(client, live_campaign, key="first", addons=[{"addon": sticker.pk, "quantity": 1}]).json()
    before = money_state()

    refused = post_pledge(
        api_client(UserFactory()), live_campaign, addons=[{"addon": addon_id, "quantity": item["quantity"]}]
    )
    changed = post_change(client, held["id"], addons=[{"addon": addon_id, "quantity": item["quantity"]}])

    for response in (refused, changed):
        assert response.status_code == 400, response.content
        assert response.json()["code"] == code
        assert response.json()["detail"]
        if code == "invalid":
            assert "addons" in response.json()["fields"]
    assert money_state() == before


def test_an_add_on_named_twice_is_a_400(backer, live_campaign):
    sticker = make_addon(live_campaign)
    twice = [{"addon": sticker.pk, "quantity": 1}, {"addon": sticker.pk, "quantity": 2}]
    response = post_pledge(api_client(backer), live_campaign, addons=twice)
    assert (response.status_code, response.json()["code"]) == (400, "duplicate_addon")
    assert not Pledge.objects.exists()


def test_the_initiator_manages_add_ons_and_anyone_lists_them(live_campaign):
    initiator = api_client(live_campaign.initiator)
    url = f"/api/v1/campaigns/{live_campaign.pk}/addons/"
    created = initiator.post(url, {"title": "Poster", "price": 1_500, "quantity_limit": 50}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["remaining"] == 50
    stranger = api_client(UserFactory())
    assert stranger.post(url, {"title": "Mine", "price": 100}, format="json").status_code == 403
    assert [a["title"] for a in stranger.get(url).json()] == ["Poster"]
    patched = initiator.patch(f"{url}{created.json()['id']}/", {"price": 2_000}, format="json")
    assert (patched.status_code, patched.json()["code"]) == (409, "addon_price_locked")  # live: price fixed
    assert initiator.delete(f"{url}{created.json()['id']}/").status_code == 204


def test_the_pledge_form_adds_add_ons_and_the_pages_and_csv_show_them(client, backer, live_campaign):
    sticker = make_addon(live_campaign, price=500)
    client.force_login(backer)
    form = client.get(f"/pledges/new/{live_campaign.slug}/")
    assert "Sticker pack" in form.content.decode()
    response = client.post(
        f"/pledges/new/{live_campaign.slug}/",
        {
            "reward": "",
            "amount": "20.00",
            f"addon_{sticker.pk}": "2",
            "card_number": "4242 4242 4242 4242",
            "expiry": "12/40",
            "cvc": "123",
            "idempotency_key": "web-addons",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    pledge = Pledge.objects.get(backer=backer)
    assert (pledge.amount, pledge.addons_amount) == (3_000, 1_000)
    detail = client.get(response["Location"]).content.decode()
    assert "2 × Sticker pack ($10.00)" in detail

    # Manage: one more sticker, the amount as it was (without add-ons).
    manage = client.get(f"/pledges/{pledge.pk}/manage/").content.decode()
    assert 'value="20.00"' in manage
    response = client.post(
        f"/pledges/{pledge.pk}/manage/",
        {
            "amount": "20.00",
            "reward": "",
            f"addon_{sticker.pk}": "3",
            "card_number": "4242 4242 4242 4242",
            "expiry": "12/40",
            "cvc": "123",
            "idempotency_key": "web-more",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    pledge.refresh_from_db()
    assert (pledge.amount, pledge.addons_amount) == (3_500, 1_500)

    client.force_login(live_campaign.initiator)
    dashboard = client.get(f"/campaigns/{live_campaign.slug}/dashboard/").content.decode()
    assert "3 × Sticker pack ($15.00)" in dashboard
    export = client.get(f"/campaigns/{live_campaign.slug}/dashboard/backers.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert (rows[0]["amount"], rows[0]["addons"], rows[0]["addons_amount"]) == ("35.00", "3 x Sticker pack", "15.00")
    assert invariant_problems() == []


def test_the_pledge_form_shows_a_refused_quantity_and_charges_nothing(client, backer, live_campaign):
    sticker = make_addon(live_campaign)
    client.force_login(backer)
    before = money_state()
    response = client.post(
        f"/pledges/new/{live_campaign.slug}/",
        {
            "reward": "",
            "amount": "20.00",
            f"addon_{sticker.pk}": "11",
            "card_number": "4242 4242 4242 4242",
            "expiry": "12/40",
            "cvc": "123",
            "idempotency_key": "web-too-many",
        },
    )
    assert response.status_code == 200
    assert "You can add at most 10 of “Sticker pack” to your pledge." in response.content.decode()
    assert money_state() == before


@pytest.mark.django_db(transaction=True)
def test_a_pledge_without_add_ons_costs_the_same_statements_on_a_campaign_that_has_some():
    campaign = LiveCampaignFactory()
    make_addon(campaign)
    client = api_client(UserFactory())
    assert post_pledge(client, LiveCampaignFactory(), key="first").status_code == 201
    assert post_pledge(api_client(UserFactory()), campaign, key="other").status_code == 201

    with statements_counted() as sent:
        response = post_pledge(client, campaign, key="second")

    assert response.status_code == 201, response.content
    assert response.json()["addons"] == []
    statements = [q["sql"] for q in sent.captured_queries]
    assert len(statements) == STATEMENTS_PER_PLEDGE[connection.vendor], "\n".join(statements)


def test_the_initiator_adds_edits_and_removes_add_ons_on_their_page(client, live_campaign, settings):
    client.force_login(live_campaign.initiator)
    url = f"/campaigns/{live_campaign.slug}/addons/"
    response = client.post(url, {"title": "Poster", "price": "15.00", "quantity_limit": "50", "description": ""})
    assert response.status_code == 302
    poster = AddOn.objects.get(campaign=live_campaign)
    assert (poster.price, poster.quantity_limit) == (1_500, 50)

    prefix = f"addon-{poster.pk}"
    edit = {f"{prefix}-title": "Big poster", f"{prefix}-price": "20.00", f"{prefix}-quantity_limit": "40"}
    refused = client.post(f"{url}{poster.pk}/edit/", {**edit, f"{prefix}-description": ""})
    assert refused.status_code == 400  # live: the price is fixed
    assert "the price of an add-on can no longer change" in refused.content.decode()
    poster.refresh_from_db()
    assert (poster.title, poster.price) == ("Poster", 1_500)

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    assert "还没有附加项" not in client.get(url).content.decode()
    assert "附加项" in client.get(url).content.decode()
    assert client.post(f"{url}{poster.pk}/remove/").status_code == 302
    assert not AddOn.objects.exists()
    assert "还没有附加项" in client.get(url).content.decode()
    stranger = UserFactory()
    client.force_login(stranger)
    assert client.get(url).status_code == 404

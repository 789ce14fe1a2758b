"""A sponsor puts up a pool in the browser, and staff do it for one in the admin: form, charge, dashboard."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import FinanceFactory, ReviewerFactory, UserFactory
from escrow.models import GatewayOperation, OperationKind
from matching.models import Pool
from matching.selectors import pool_balance
from matching.tests.factories import sponsor_create
from projects.tests.factories import CategoryFactory
from settlement.tests.checks import money_state
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db

URL = reverse("matching:pool_create")


def form_data(**changes):
    now = timezone.localtime()
    data = {
        "name": "Harbour fund",
        "description": "For the harbour's neighbours.",
        "currency": "USD",
        "amount": "5,000.00",
        "mode": "quadratic",
        "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        "ratio": "1",
        "per_campaign_cap": "",
        "minimum_contribution": "",
        "categories": [CategoryFactory().pk],
        "card_number": "4242 4242 4242 4242",
        "idempotency_key": "form-1",
    }
    data.update(changes)
    return data


def test_a_sponsor_puts_up_a_pool_pays_it_and_sees_its_dashboard(client):
    sponsor = sponsor_create()
    client.force_login(sponsor)
    assert "Put up a matching pool" in client.get(reverse("matching:pool_list")).content.decode()
    assert 'name="idempotency_key"' in client.get(URL).content.decode()
    response = client.post(URL, form_data(), follow=True)
    pool = Pool.objects.get()
    assert response.redirect_chain[-1][0] == reverse("matching:pool_dashboard", args=[pool.slug])
    assert "Your pool is funded and public." in response.content.decode()
    assert (pool.sponsor, pool.amount, pool.mode, pool.per_campaign_cap) == (sponsor, 500_000, "quadratic", 50_000)
    assert pool_balance(pool=pool) == 500_000
    # The same form sent again (a double click) makes and charges no second pool.
    client.post(URL, form_data())
    assert Pool.objects.count() == 1
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1
    assert ledger_verify() == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": "0"}, "amount", "The amount must be more than zero."),
        ({"per_campaign_cap": "6,000.00"}, "per_campaign_cap", "A cap of $6,000.00 is more than the pool, $5,000.00."),
        (
            {"ends_at": (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")},
            "ends_at",
            "The end must come after the start.",
        ),
        ({"categories": []}, "categories", "Say which campaigns the pool matches, or let campaigns apply."),
        ({"mode": "fixed_ratio", "ratio": "0"}, "ratio", "The ratio is a number above 0"),
        ({"card_number": "1234"}, "card_number", "This is a test site"),
        ({"card_number": "4000 0000 0000 0002"}, "card_number", "The card was declined"),
    ],
)
def test_bad_input_is_shown_on_its_field_and_charges_nothing(client, changes, field, message):
    client.force_login(sponsor_create())
    before = money_state()
    response = client.post(URL, form_data(**changes))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    after = money_state()
    # A declined card leaves the gateway's record of the refusal, and no money moved.
    assert [op[1] for op in after.pop("gateway_operations")] in ([], ["declined"])
    before.pop("gateway_operations")
    assert after == before
    assert not Pool.objects.filter(funded_at__isnull=False).exists()


def test_after_a_declined_card_another_card_funds_the_pool(client):
    client.force_login(sponsor_create())
    declined = client.post(URL, form_data(card_number="4000 0000 0000 0002"))
    fresh_key = declined.context["form"].data["idempotency_key"]
    assert fresh_key != "form-1"
    response = client.post(URL, form_data(idempotency_key=fresh_key))
    assert response.status_code == 302
    assert Pool.objects.filter(funded_at__isnull=False).count() == 1
    assert ledger_verify() == []


def test_only_sponsors_open_the_form(client):
    client.force_login(UserFactory())
    assert client.get(URL).status_code == 403
    assert client.post(URL, form_data()).status_code == 403
    assert "Put up a matching pool" not in client.get(reverse("matching:pool_list")).content.decode()
    assert not Pool.objects.exists()


def test_the_form_in_chinese(client):
    client.force_login(sponsor_create())
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "设立配捐池" in page
    assert "付款并开设配捐池" in page


def test_finance_puts_up_a_pool_for_a_sponsor_in_the_admin(client):
    sponsor = sponsor_create(username="harbour")
    url = reverse("admin:matching_pool_create_for_sponsor")
    client.force_login(ReviewerFactory())
    assert client.get(url).status_code == 403
    client.force_login(FinanceFactory())
    assert "Put up a pool for a sponsor" in client.get(reverse("admin:matching_pool_changelist")).content.decode()
    refused = client.post(url, form_data(sponsor=UserFactory().username))
    assert "Only members of the Sponsors group" in refused.content.decode()
    response = client.post(url, form_data(sponsor="harbour"))
    pool = Pool.objects.get(funded_at__isnull=False)
    assert response.status_code == 302
    assert (pool.sponsor, pool.amount) == (sponsor, 500_000)
    assert ledger_verify() == []

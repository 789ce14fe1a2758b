"""A change of reward or country moves the shipping: quoted for the backer's country, the difference
charged or refunded with the rest, in the totals and the ledger; a country not shipped to changes nothing."""

import importlib

import pytest
from django.core import mail
from django.urls import reverse

from crowdfund_site.api.testing import api_client
from crowdfund_site.exceptions import InvalidInput
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind
from escrow.vocabulary import pledge_change_charge_key, pledge_change_refund_key
from pledges.changes import pledge_change
from pledges.models import Pledge, PledgeChange
from pledges.tests.factories import VISA, new_key, pledge_held
from pledges.tests.test_pledge_shipping import pledge_shipped, shipping_reward
from projects.models import Campaign, RewardTier
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.tests.checks import invariant_problems, net_charged
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db

# The mug ships to Germany for 5.00, the EU for 9.00, anywhere else for 15.00; the poster ships
# to the EU only, for 3.00 (Germany 2.00); the e-book ships nothing.
MUG_RULES = [("DE", 500), ("eu", 900), ("anywhere", 1_500)]
POSTER_RULES = [("DE", 200), ("eu", 300)]


@pytest.fixture
def campaign():
    return LiveCampaignFactory()


@pytest.fixture
def mug(campaign):
    return shipping_reward(campaign, rules=MUG_RULES, title="Mug")


@pytest.fixture
def poster(campaign):
    return shipping_reward(campaign, rules=POSTER_RULES, title="Poster")


@pytest.fixture
def ebook(campaign):
    return RewardTierFactory(campaign=campaign, title="E-book", minimum_amount=1_000)


def change_charged(change: PledgeChange) -> int:
    return GatewayOperation.objects.get(idempotency_key=pledge_change_charge_key(change.pk)).amount


def change_refunded(change: PledgeChange) -> int:
    operations = GatewayOperation.objects.filter(
        kind=OperationKind.REFUND,
        idempotency_key__in=[pledge_change_refund_key(change.pk, part) for part in range(len(change.refund_parts))],
    )
    return sum(operations.values_list("amount", flat=True))


def raised(campaign) -> int:
    return Campaign.objects.get(pk=campaign.pk).pledged_amount


def test_a_move_to_a_reward_with_dearer_shipping_charges_the_difference_in_shipping(campaign, mug, poster):
    pledge = pledge_shipped(campaign=campaign, reward=poster, country="FR")  # 50.00 + 3.00 to France
    assert pledge.amount == 5_300

    changed = pledge_change(
        pledge=pledge, actor=pledge.backer, reward=mug, payment_token=VISA, idempotency_key=new_key()
    )

    # What was pledged to the campaign stays; the mug's shipping to France (9.00) replaces the poster's.
    assert changed.pk == pledge.pk
    assert (changed.reward_id, changed.amount, changed.shipping_country, changed.shipping_amount) == (
        mug.pk,
        5_900,
        "FR",
        900,
    )
    change = PledgeChange.objects.get(pledge=pledge)
    assert change_charged(change) == 600
    assert (change.from_shipping_amount, change.to_shipping_amount) == (300, 900)
    assert raised(campaign) == 5_900
    assert net_charged(pledge) == 5_900
    assert ledger_verify() == []
    assert invariant_problems() == []


def test_a_move_to_a_reward_with_cheaper_shipping_refunds_the_difference(campaign, mug, poster):
    pledge = pledge_shipped(campaign=campaign, reward=mug, country="DE")  # 50.00 + 5.00 to Germany

    changed = pledge_change(pledge=pledge, actor=pledge.backer, reward=poster, idempotency_key=new_key())

    assert (changed.amount, changed.shipping_amount) == (5_200, 200)
    assert change_refunded(PledgeChange.objects.get(pledge=pledge)) == 300
    assert raised(campaign) == 5_200
    assert ledger_verify() == []


def test_a_move_from_a_physical_reward_to_a_digital_one_refunds_the_shipping(campaign, mug, ebook):
    pledge = pledge_shipped(campaign=campaign, reward=mug, country="FR")

    changed = pledge_change(pledge=pledge, actor=pledge.backer, reward=ebook, idempotency_key=new_key())

    assert (changed.reward_id, changed.amount, changed.shipping_country, changed.shipping_amount) == (
        ebook.pk,
        5_000,
        "",
        0,
    )
    assert change_refunded(PledgeChange.objects.get(pledge=pledge)) == 900
    assert raised(campaign) == 5_000
    assert ledger_verify() == []


def test_a_move_to_no_reward_refunds_the_shipping_too(campaign, mug):
    pledge = pledge_shipped(campaign=campaign, reward=mug, country="JP")

    changed = pledge_change(pledge=pledge, actor=pledge.backer, reward=None, idempotency_key=new_key())

    assert (changed.reward_id, changed.amount, changed.shipping_amount) == (None, 5_000, 0)
    assert ledger_verify() == []


def test_a_move_from_a_digital_reward_to_a_physical_one_asks_for_the_country_and_charges_its_shipping(
    campaign, mug, ebook
):
    pledge = pledge_held(campaign=campaign, amount=6_000, reward=ebook)

    with pytest.raises(InvalidInput) as missing:
        pledge_change(pledge=pledge, actor=pledge.backer, reward=mug, payment_token=VISA, idempotency_key=new_key())
    assert (missing.value.code, missing.value.field) == ("shipping_country_required", "shipping_country")

    changed = pledge_change(
        pledge=pledge,
        actor=pledge.backer,
        reward=mug,
        shipping_country="us",
        payment_token=VISA,
        idempotency_key=new_key(),
    )

    assert (changed.amount, changed.shipping_country, changed.shipping_amount) == (7_500, "US", 1_500)
    assert change_charged(PledgeChange.objects.get(pledge=pledge, status="done")) == 1_500
    assert raised(campaign) == 7_500
    assert ledger_verify() == []


def test_a_move_to_a_reward_that_does_not_ship_to_the_backers_country_is_refused_and_nothing_changes(
    campaign, mug, poster
):
    pledge = pledge_shipped(campaign=campaign, reward=mug, country="US")  # the poster ships to the EU only
    ledger_before = LedgerTransaction.objects.count()
    claimed = {r.pk: r.claimed_count for r in RewardTier.objects.all()}

    with pytest.raises(InvalidInput) as refused:
        pledge_change(pledge=pledge, actor=pledge.backer, reward=poster, payment_token=VISA, idempotency_key=new_key())

    assert (refused.value.code, refused.value.field) == ("does_not_ship_there", "shipping_country")
    assert "“Poster” reward does not ship to United States" in refused.value.message
    pledge.refresh_from_db()
    assert (pledge.reward_id, pledge.amount, pledge.shipping_country, pledge.shipping_amount) == (
        mug.pk,
        6_500,
        "US",
        1_500,
    )
    assert not PledgeChange.objects.exists()
    assert LedgerTransaction.objects.count() == ledger_before
    assert {r.pk: r.claimed_count for r in RewardTier.objects.all()} == claimed
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 1  # the pledge's own
    assert raised(campaign) == 6_500
    assert ledger_verify() == []


def test_a_new_country_for_the_same_reward_is_quoted_again(campaign, mug):
    pledge = pledge_shipped(campaign=campaign, reward=mug, country="FR")  # 9.00

    changed = pledge_change(pledge=pledge, actor=pledge.backer, shipping_country="DE", idempotency_key=new_key())

    assert (changed.amount, changed.shipping_country, changed.shipping_amount) == (5_500, "DE", 500)
    assert ledger_verify() == []


def test_an_amount_given_is_the_whole_and_must_cover_the_new_rewards_minimum_plus_its_shipping(campaign, mug, ebook):
    pledge = pledge_held(campaign=campaign, amount=2_000, reward=ebook)

    with pytest.raises(InvalidInput) as short:
        pledge_change(
            pledge=pledge,
            actor=pledge.backer,
            amount=5_000,
            reward=mug,
            shipping_country="FR",
            payment_token=VISA,
            idempotency_key=new_key(),
        )

    assert short.value.code == "below_reward_minimum"
    assert "at least $50.00 plus $9.00 shipping to France: $59.00 in all" in short.value.message
    changed = pledge_change(
        pledge=pledge,
        actor=pledge.backer,
        amount=5_900,
        reward=mug,
        shipping_country="FR",
        payment_token=VISA,
        idempotency_key=new_key(),
    )
    assert (changed.amount, changed.shipping_amount) == (5_900, 900)
    assert ledger_verify() == []


def test_a_retry_of_a_change_that_moved_the_shipping_moves_no_money_twice(campaign, mug, poster):
    pledge = pledge_shipped(campaign=campaign, reward=poster, country="FR")
    key = new_key()

    first = pledge_change(pledge=pledge, actor=pledge.backer, reward=mug, payment_token=VISA, idempotency_key=key)
    again = pledge_change(pledge=pledge, actor=pledge.backer, reward=mug, payment_token=VISA, idempotency_key=key)

    assert (first.amount, again.amount) == (5_900, 5_900)
    assert PledgeChange.objects.count() == 1
    assert GatewayOperation.objects.filter(kind=OperationKind.CHARGE).count() == 2  # the pledge, the difference
    assert ledger_verify() == []


def test_verify_ledger_finds_a_pledge_whose_shipping_is_not_what_its_change_made_it(campaign, mug, poster):
    pledge = pledge_shipped(campaign=campaign, reward=mug, country="DE")
    pledge_change(pledge=pledge, actor=pledge.backer, reward=poster, idempotency_key=new_key())
    assert ledger_verify() == []

    Pledge.objects.filter(pk=pledge.pk).update(shipping_amount=500)

    assert any("shipping differs from what their last change made it" in p for p in ledger_verify())


# --- The API and the pages --------------------------------------------------------------------------


def test_the_api_changes_reward_and_country_and_lists_the_shipping_in_the_history(campaign, mug, ebook):
    pledge = pledge_held(campaign=campaign, amount=6_000, reward=ebook)
    client = api_client(pledge.backer)
    url = f"/api/v1/pledges/{pledge.pk}/change/"

    refused = client.post(url, {"reward": mug.pk, "payment_token": VISA}, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert refused.status_code == 400, refused.content
    assert refused.json()["code"] == "shipping_country_required"

    response = client.post(
        url,
        {"reward": mug.pk, "shipping_country": "FR", "payment_token": VISA},
        format="json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["amount"], body["shipping_country"], body["shipping_amount"]) == (6_900, "FR", 900)
    assert body["changes"][-1]["from_shipping_amount"] == 0
    assert (body["changes"][-1]["to_shipping_country"], body["changes"][-1]["to_shipping_amount"]) == ("FR", 900)
    assert ledger_verify() == []


def test_the_manage_page_moves_a_pledge_to_a_physical_reward_with_the_country_chosen(client, campaign, mug, ebook):
    pledge = pledge_held(campaign=campaign, amount=6_000, reward=ebook)
    client.force_login(pledge.backer)
    url = reverse("pledges:manage", kwargs={"pk": pledge.pk})
    page = client.get(url).content.decode()
    assert "Mug ($50.00 or more) — ships, shipping added" in page
    assert "the amount includes its shipping to the country you choose" in page
    card = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}

    response = client.post(url, {"amount": "60.00", "reward": mug.pk, "idempotency_key": new_key(), **card})
    assert "choose the country to ship it to" in response.content.decode()
    response = client.post(
        url, {"amount": "60.00", "reward": mug.pk, "shipping_country": "FR", "idempotency_key": new_key(), **card}
    )
    assert response.status_code == 302
    pledge.refresh_from_db()
    assert (pledge.reward_id, pledge.amount, pledge.shipping_amount) == (mug.pk, 6_000, 900)

    detail = client.get(reverse("pledges:detail", kwargs={"pk": pledge.pk})).content.decode()
    assert "shipping: no shipping → $9.00 to France" in detail
    assert ledger_verify() == []


def test_the_manage_page_says_what_a_reward_needs_with_its_shipping(client, campaign, mug, ebook):
    pledge = pledge_held(campaign=campaign, amount=2_000, reward=ebook)
    client.force_login(pledge.backer)
    url = reverse("pledges:manage", kwargs={"pk": pledge.pk})
    card = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}

    response = client.post(
        url, {"amount": "50.00", "reward": mug.pk, "shipping_country": "FR", "idempotency_key": new_key(), **card}
    )

    assert "at least $50.00 plus $9.00 shipping to France: $59.00 in all" in response.content.decode()
    pledge.refresh_from_db()
    assert (pledge.reward_id, pledge.amount) == (ebook.pk, 2_000)


def test_the_change_of_reward_page_sends_a_shipping_move_to_manage_your_pledge(client, campaign, mug, ebook):
    pledge = pledge_held(campaign=campaign, amount=6_000, reward=ebook)
    client.force_login(pledge.backer)
    url = reverse("pledges:change_reward", kwargs={"pk": pledge.pk})

    assert "Mug ($50.00 or more) — ships: choose it under Manage your pledge" in client.get(url).content.decode()
    response = client.post(url, {"reward": mug.pk})

    assert "“Mug” changes your shipping: choose it under “Manage your pledge”" in response.content.decode()
    pledge.refresh_from_db()
    assert pledge.reward_id == ebook.pk


def test_the_manage_page_speaks_chinese_about_the_shipping(client, settings, campaign, mug, ebook):
    pledge = pledge_held(campaign=campaign, amount=2_000, reward=ebook)
    client.force_login(pledge.backer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    url = reverse("pledges:manage", kwargs={"pk": pledge.pk})
    card = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}

    page = client.get(url).content.decode()
    response = client.post(
        url, {"amount": "50.00", "reward": mug.pk, "shipping_country": "FR", "idempotency_key": new_key(), **card}
    )

    assert "需寄送，另加运费" in page
    assert "金额包含寄往你所选国家的运费" in page
    assert "另加寄往法国的运费 $9.00：合计 $59.00" in response.content.decode()


def test_the_backer_is_emailed_the_shipping_before_and_after(
    campaign, mug, ebook, celery_eager, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    pledge = pledge_shipped(campaign=campaign, reward=mug, country="FR")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        pledge_change(pledge=pledge, actor=pledge.backer, reward=ebook, idempotency_key=new_key())

    [message] = [m for m in mail.outbox if "changed" in m.body]
    assert "Shipping: $9.00 to France → no shipping" in message.body
    assert "We are refunding the difference of $9.00 to your card." in message.body


def test_changes_made_before_shipping_could_move_are_given_their_pledges_shipping(campaign, mug, ebook):
    from django.apps import apps

    migration = importlib.import_module("pledges.migrations.0009_pledge_change_shipping")
    shipped = pledge_shipped(campaign=campaign, reward=mug, country="FR")
    pledge_change(pledge=shipped, actor=shipped.backer, amount=8_900, payment_token=VISA, idempotency_key=new_key())
    plain = pledge_held(campaign=campaign, amount=2_000, reward=ebook)
    pledge_change(pledge=plain, actor=plain.backer, amount=3_000, payment_token=VISA, idempotency_key=new_key())
    # As the rows were before the migration: no shipping recorded on any change.
    PledgeChange.objects.update(
        from_shipping_country="", to_shipping_country="", from_shipping_amount=0, to_shipping_amount=0
    )
    assert ledger_verify() != []

    migration.changes_kept_their_pledges_shipping(apps, None)

    assert sorted(
        PledgeChange.objects.values_list(
            "pledge_id", "from_shipping_country", "to_shipping_country", "from_shipping_amount", "to_shipping_amount"
        )
    ) == sorted([(shipped.pk, "FR", "FR", 900, 900), (plain.pk, "", "", 0, 0)])
    assert ledger_verify() == []

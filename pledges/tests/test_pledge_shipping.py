"""Pledges for rewards that ship: the country picks the rule, and the whole is charged, held and returned."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import FinanceFactory, UserFactory
from crowdfund_site.api.testing import api_client
from crowdfund_site.exceptions import Conflict, InvalidInput
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import charge_key, refund_key
from pledges.changes import pledge_change
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_cancel, pledge_create, pledge_refund
from pledges.tests.factories import VISA, new_key, pledge_held
from projects.models import Campaign, CampaignStatus, RewardShippingRule, RewardTier
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.tests.checks import invariant_problems, net_charged
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db

RULES = [("DE", 500), ("eu", 900), ("anywhere", 1_500)]


def shipping_reward(campaign, rules=RULES, **fields):
    reward = RewardTierFactory(campaign=campaign, minimum_amount=5_000, ships=True, **fields)
    RewardShippingRule.objects.bulk_create(
        RewardShippingRule(reward=reward, destination=destination, cost=cost) for destination, cost in rules
    )
    return reward


def pledge_shipped(*, campaign, reward, country: str, amount: int = 5_000, backer=None) -> Pledge:
    return pledge_create(
        backer=backer or UserFactory(),
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token=VISA,
        idempotency_key=new_key(),
        reward=reward,
        shipping_country=country,
    )


def charged(pledge) -> int:
    return GatewayOperation.objects.get(idempotency_key=charge_key(pledge.pk), kind=OperationKind.CHARGE).amount


def refunded(pledge) -> int:
    return GatewayOperation.objects.get(idempotency_key=refund_key(pledge.pk), kind=OperationKind.REFUND).amount


@pytest.mark.parametrize(
    ("country", "shipping"),
    [("DE", 500), ("de", 500), ("FR", 900), ("JP", 1_500), ("US", 1_500)],
)
def test_the_most_specific_rule_sets_the_shipping_and_the_whole_is_charged_and_held(country, shipping):
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign)

    pledge = pledge_shipped(campaign=campaign, reward=reward, country=country, amount=6_000)

    assert pledge.status == PledgeStatus.HELD
    assert (pledge.shipping_country, pledge.shipping_amount) == (country.upper(), shipping)
    assert pledge.amount == 6_000 + shipping
    assert pledge.pledged_amount == 6_000
    assert charged(pledge) == 6_000 + shipping
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 6_000 + shipping
    assert ledger_verify() == []


def test_free_shipping_holds_only_the_pledge():
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign, rules=[("CN", 0)])

    pledge = pledge_shipped(campaign=campaign, reward=reward, country="CN")

    assert (pledge.amount, pledge.shipping_country, pledge.shipping_amount) == (5_000, "CN", 0)


@pytest.mark.parametrize(
    ("country", "code"),
    [
        ("", "shipping_country_required"),
        ("ZZ", "invalid_country"),
        ("Germany", "invalid_country"),
        ("D3", "invalid_country"),
        ("US", "does_not_ship_there"),
    ],
)
def test_a_missing_unknown_or_unserved_country_is_refused_and_nothing_is_stored(country, code):
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign, rules=[("eu", 900)], quantity_limit=10)

    with pytest.raises(InvalidInput) as refused:
        pledge_shipped(campaign=campaign, reward=reward, country=country)

    assert (refused.value.code, refused.value.field) == (code, "shipping_country")
    assert not Pledge.objects.exists()
    assert not GatewayOperation.objects.exists()
    reward.refresh_from_db()
    assert reward.claimed_count == 0


def test_the_refusal_names_the_reward_and_the_country():
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign, rules=[("eu", 900)], title="Poster")

    with pytest.raises(InvalidInput) as refused:
        pledge_shipped(campaign=campaign, reward=reward, country="US")

    assert refused.value.message.startswith("The “Poster” reward does not ship to United States.")


def test_a_reward_that_does_not_ship_ignores_a_country_and_adds_nothing():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=2_500)

    pledge = pledge_shipped(campaign=campaign, reward=reward, country="DE")

    assert (pledge.amount, pledge.shipping_country, pledge.shipping_amount) == (5_000, "", 0)


def test_the_reward_minimum_is_met_by_the_pledge_without_its_shipping():
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign)

    with pytest.raises(InvalidInput) as refused:
        pledge_shipped(campaign=campaign, reward=reward, country="JP", amount=4_000)  # 4,000 + 1,500 > 5,000

    assert refused.value.code == "below_reward_minimum"


def test_a_retry_with_the_same_key_and_country_returns_the_same_pledge_and_another_country_is_refused():
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign)
    backer, key = UserFactory(), new_key()
    request = {
        "backer": backer,
        "campaign": campaign,
        "amount": 5_000,
        "currency": "USD",
        "payment_token": VISA,
        "idempotency_key": key,
        "reward": reward,
    }
    first = pledge_create(**request, shipping_country="DE")

    assert pledge_create(**request, shipping_country="DE").pk == first.pk
    with pytest.raises(Conflict) as refused:
        pledge_create(**request, shipping_country="FR")
    assert refused.value.code == "idempotency_key_reused"
    assert Pledge.objects.count() == 1


def test_cancelling_refunds_the_whole_shipping_included():
    campaign = LiveCampaignFactory()
    pledge = pledge_shipped(campaign=campaign, reward=shipping_reward(campaign), country="FR")

    pledge_cancel(pledge=pledge, actor=pledge.backer)

    assert refunded(pledge) == 5_900
    assert net_charged(pledge) == 0
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 0
    assert ledger_verify() == []


def test_a_staff_refund_returns_the_whole_shipping_included():
    campaign = LiveCampaignFactory()
    pledge = pledge_shipped(campaign=campaign, reward=shipping_reward(campaign), country="JP")

    pledge_refund(pledge=pledge, actor=FinanceFactory(), reason="Damaged in transit")

    assert refunded(pledge) == 6_500
    assert ledger_verify() == []


def _close_and_settle(campaign) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert campaign.pk in campaigns_close_due(enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def test_a_successful_campaign_releases_the_shipping_with_the_pledges():
    campaign = LiveCampaignFactory(goal=10_000)
    reward = shipping_reward(campaign)
    shipped = pledge_shipped(campaign=campaign, reward=reward, country="DE")  # 5,500
    plain = pledge_held(campaign=campaign, amount=5_000)

    campaign = _close_and_settle(campaign)

    assert campaign.status == CampaignStatus.SUCCEEDED
    assert campaign.pledged_amount == 10_500
    assert set(campaign.pledges.values_list("status", flat=True)) == {PledgeStatus.RELEASED}
    assert net_charged(shipped) == 5_500
    assert net_charged(plain) == 5_000
    assert invariant_problems() == []
    call_command("verify_ledger")  # raises on a problem


def test_a_failed_campaign_refunds_the_shipping_with_the_pledge():
    campaign = LiveCampaignFactory(goal=1_000_000)
    pledge = pledge_shipped(campaign=campaign, reward=shipping_reward(campaign), country="FR")

    campaign = _close_and_settle(campaign)

    assert campaign.status == CampaignStatus.FAILED
    assert refunded(pledge) == 5_900
    assert invariant_problems() == []


def test_a_change_of_amount_keeps_the_shipping():
    campaign = LiveCampaignFactory()
    pledge = pledge_shipped(campaign=campaign, reward=shipping_reward(campaign), country="FR")

    # The amount asked for is the whole, as on the pledge: 80.00 for the reward plus 9.00 shipping.
    changed = pledge_change(
        pledge=pledge, actor=pledge.backer, amount=8_900, payment_token=VISA, idempotency_key=new_key()
    )

    assert changed.pk == pledge.pk
    assert (changed.amount, changed.shipping_country, changed.shipping_amount) == (8_900, "FR", 900)
    campaign.refresh_from_db()
    assert campaign.pledged_amount == 8_900
    assert ledger_verify() == []


def test_a_change_cannot_take_the_pledge_down_to_its_shipping_or_below():
    campaign = LiveCampaignFactory()
    pledge = pledge_shipped(campaign=campaign, reward=shipping_reward(campaign), country="FR")

    with pytest.raises(InvalidInput) as error:
        pledge_change(pledge=pledge, actor=pledge.backer, amount=900, idempotency_key=new_key())

    assert error.value.code == "below_shipping"
    pledge.refresh_from_db()
    assert pledge.amount == 5_900


# --- The API --------------------------------------------------------------------------------------


def _api_pledge(client, campaign, reward, **extra):
    body = {"amount": 5_000, "currency": "USD", "reward": reward.pk, "payment_token": VISA, **extra}
    return client.post(f"/api/v1/campaigns/{campaign.pk}/pledges/", body, format="json", HTTP_IDEMPOTENCY_KEY=new_key())


def test_the_api_takes_the_country_and_answers_with_the_shipping_and_the_whole():
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign)

    response = _api_pledge(api_client(UserFactory()), campaign, reward, shipping_country="fr")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["shipping_country"], body["shipping_amount"]) == (5_900, "FR", 900)


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({}, "shipping_country_required"),
        ({"shipping_country": "QQ"}, "invalid_country"),
        ({"shipping_country": "USA"}, "invalid"),
        ({"shipping_country": 49}, "invalid"),
        ({"shipping_country": "BR"}, "does_not_ship_there"),
    ],
)
def test_the_api_refuses_a_bad_country_with_a_400_and_stores_nothing(extra, code):
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign, rules=[("eu", 900), ("north_america", 1_200)])

    response = _api_pledge(api_client(UserFactory()), campaign, reward, **extra)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code or code == "invalid"
    assert not Pledge.objects.exists()


def test_the_api_lists_a_rewards_shipping_rules():
    campaign = LiveCampaignFactory()
    shipping_reward(campaign)

    response = api_client(UserFactory()).get(f"/api/v1/campaigns/{campaign.pk}/rewards/")

    assert response.status_code == 200
    (reward,) = response.json()
    assert reward["ships"] is True
    assert reward["shipping_rules"] == [{"destination": d, "cost": c} for d, c in RULES]


# --- The pledge page ---------------------------------------------------------------------------------


def test_the_pledge_page_asks_for_the_country_and_refuses_one_not_shipped_to(client):
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign, rules=[("eu", 900)])
    client.force_login(UserFactory())
    url = reverse("pledges:create", kwargs={"slug": campaign.slug})

    page = client.get(url, {"reward": reward.pk}).content.decode()
    assert 'name="shipping_country"' in page
    assert "Ships to:" in page
    assert "European Union $9.00" in page

    form = {
        "reward": reward.pk,
        "amount": "50",
        "shipping_country": "US",
        "card_number": "4242424242424242",
        "expiry": "12/39",
        "cvc": "123",
        "idempotency_key": new_key(),
    }
    refused = client.post(url, form).content.decode()
    assert "does not ship to United States" in refused
    assert not Pledge.objects.exists()

    response = client.post(url, {**form, "shipping_country": "IT"})
    assert response.status_code == 302
    pledge = Pledge.objects.get()
    assert (pledge.amount, pledge.shipping_country) == (5_900, "IT")


def test_the_backer_list_and_the_csv_show_the_whole_and_its_shipping(client):
    campaign = LiveCampaignFactory()
    pledge = pledge_shipped(campaign=campaign, reward=shipping_reward(campaign), country="FR")
    client.force_login(campaign.initiator)

    page = client.get(reverse("dashboard:campaign_dashboard", kwargs={"slug": campaign.slug})).content.decode()
    assert "$59.00" in page
    assert "incl. $9.00 shipping to France" in page

    response = client.get(reverse("dashboard:campaign_backers_csv", kwargs={"slug": campaign.slug}))
    header, row = b"".join(response.streaming_content).decode().splitlines()
    # The add-on columns come after the shipping ones, so earlier columns keep their positions.
    assert header.endswith(",shipping_country,shipping_amount,addons,addons_amount")
    assert row.startswith(f"{pledge.pk},")
    assert ",59.00,USD,held," in row
    assert row.endswith(",FR,9.00,,")


def test_the_pledge_page_speaks_chinese_about_shipping(client, settings):
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign, rules=[("eu", 900)])
    client.force_login(UserFactory())
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    url = reverse("pledges:create", kwargs={"slug": campaign.slug})

    page = client.get(url, {"reward": reward.pk}).content.decode()
    assert "寄送至：" in page
    assert "欧盟 $9.00" in page
    assert '<option value="DE">德国</option>' in page

    form = {
        "reward": reward.pk,
        "amount": "50",
        "shipping_country": "JP",
        "card_number": "4242424242424242",
        "expiry": "12/39",
        "cvc": "123",
        "idempotency_key": new_key(),
    }
    refused = client.post(url, form).content.decode()
    assert "回报不寄送到日本" in refused
    # Shown again with the country the backer chose still chosen, not "Choose a country".
    assert '<option value="JP" selected>日本</option>' in refused
    assert '<option value="" selected>' not in refused
    assert not Pledge.objects.exists()


def test_verify_ledger_finds_shipping_on_a_pledge_that_ships_nothing():
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign)
    pledge = pledge_shipped(campaign=campaign, reward=reward, country="DE")
    plain = pledge_held(campaign=campaign)
    assert ledger_verify() == []

    RewardTier.objects.filter(pk=reward.pk).update(ships=False)
    Pledge.objects.filter(pk=plain.pk).update(shipping_amount=100)

    problems = ledger_verify()
    assert f"Pledges with shipping for a reward that does not ship: {pledge.pk}" in problems
    assert f"Pledges charged shipping without a country: {plain.pk}" in problems


# --- Bad bodies -------------------------------------------------------------------------------------


def test_malformed_and_huge_bodies_are_refused_and_nothing_is_stored():
    campaign = LiveCampaignFactory()
    reward = shipping_reward(campaign)
    client = api_client(UserFactory())
    url = f"/api/v1/campaigns/{campaign.pk}/pledges/"

    malformed = client.post(
        url, data='{"amount": 5000, "shipping_country": "DE"', content_type="application/json", HTTP_IDEMPOTENCY_KEY="a"
    )
    assert malformed.status_code == 400
    huge = client.post(
        url,
        {
            "amount": 5_000,
            "currency": "USD",
            "reward": reward.pk,
            "payment_token": VISA,
            "shipping_country": "D" * 5_000_000,
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="b",
    )
    assert (huge.status_code, huge.json()["code"]) == (413, "request_too_large")
    for country in (["DE"], {"code": "DE"}, None, "DEU"):
        response = _api_pledge(client, campaign, reward, shipping_country=country)
        assert response.status_code == 400, (country, response.content)
    assert not Pledge.objects.exists()
    assert not GatewayOperation.objects.exists()


def test_a_reward_with_thousands_of_rules_or_rules_that_are_not_a_list_is_refused():
    campaign = LiveCampaignFactory(status=CampaignStatus.DRAFT, launched_at=None)
    client = api_client(campaign.initiator)
    url = f"/api/v1/campaigns/{campaign.pk}/rewards/"
    body = {"title": "Poster", "minimum_amount": 2_000, "ships": True}

    many = [{"destination": "DE", "cost": 1}] * 10_000
    for rules in (many, "DE 5", {"destination": "DE", "cost": 5}, [{"destination": "DE"}], [["DE", 5]]):
        response = client.post(url, {**body, "shipping_rules": rules}, format="json")
        assert response.status_code == 400, response.content
    assert not RewardTier.objects.exists()
    assert not RewardShippingRule.objects.exists()


def test_the_campaign_page_says_which_rewards_ship(client):
    campaign = LiveCampaignFactory()
    shipping_reward(campaign, title="Mug")
    RewardTierFactory(campaign=campaign, title="E-mail")

    page = client.get(campaign.get_absolute_url()).content.decode()

    assert page.count("Ships: shipping for your country is added when you back it") == 1


def test_the_change_of_reward_page_sends_a_move_to_a_shipping_reward_to_manage_your_pledge(client):
    campaign = LiveCampaignFactory()
    shipping_reward(campaign, title="Mug")
    pledge = pledge_held(campaign=campaign, amount=6_000)
    client.force_login(pledge.backer)

    page = client.get(reverse("pledges:change_reward", kwargs={"pk": pledge.pk})).content.decode()

    assert "Mug ($50.00 or more) — ships: choose it under Manage your pledge" in page

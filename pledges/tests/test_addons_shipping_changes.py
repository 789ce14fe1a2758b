"""One change may move the reward, the country and the add-ons at once: the shipping is quoted
again, the add-ons come on top of the amount, and only the difference of the whole moves."""

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client
from crowdfund_site.exceptions import InvalidInput
from pledges.changes import pledge_change
from pledges.models import Pledge, PledgeAddOn, PledgeChange
from pledges.services import pledge_create
from pledges.tests.factories import VISA, new_key
from pledges.tests.test_pledge_shipping import shipping_reward
from projects.addons import addon_create
from projects.models import AddOn, Campaign
from projects.tests.factories import LiveCampaignFactory
from settlement.tests.checks import escrow_balance, invariant_problems, net_charged

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return LiveCampaignFactory()


@pytest.fixture
def mug(campaign):  # ships to Germany for 5.00, the EU for 9.00, anywhere else for 15.00
    return shipping_reward(campaign, rules=[("DE", 500), ("eu", 900), ("anywhere", 1_500)], title="Mug")


@pytest.fixture
def tote(campaign):  # ships to the EU only, for 3.00
    return shipping_reward(campaign, rules=[("eu", 300)], title="Tote bag")


@pytest.fixture
def sticker(campaign):
    return addon_create(campaign=campaign, actor=campaign.initiator, title="Sticker pack", price=500, quantity_limit=10)


@pytest.fixture
def badge(campaign):
    return addon_create(campaign=campaign, actor=campaign.initiator, title="Badge", price=200, quantity_limit=None)


@pytest.fixture
def held(campaign, tote, sticker):
    # 50.00 pledged + 3.00 shipping to France + 2 stickers at 5.00 = 63.00.
    return pledge_create(
        backer=UserFactory(),
        campaign=campaign,
        amount=5_000,
        currency=campaign.currency,
        payment_token=VISA,
        idempotency_key=new_key(),
        reward=tote,
        shipping_country="FR",
        addons={sticker.pk: 2},
    )


def carried(pledge) -> dict[int, int]:
    return dict(PledgeAddOn.objects.filter(pledge=pledge).values_list("addon_id", "quantity"))


def claimed(addon) -> int:
    return AddOn.objects.get(pk=addon.pk).claimed_count


def raised(campaign) -> int:
    return Campaign.objects.get(pk=campaign.pk).pledged_amount


def test_reward_country_and_add_ons_change_at_once_and_only_the_difference_moves(campaign, held, mug, sticker, badge):
    assert (held.amount, held.shipping_amount, held.addons_amount) == (6_300, 300, 1_000)

    changed = pledge_change(
        pledge=held,
        actor=held.backer,
        reward=mug,
        shipping_country="US",
        addons={sticker.pk: 1, badge.pk: 3},
        payment_token=VISA,
        idempotency_key=new_key(),
    )

    # What was pledged stays; the mug's shipping to the US and the new add-ons come on top.
    assert (changed.reward_id, changed.shipping_country) == (mug.pk, "US")
    assert (changed.pledged_amount, changed.shipping_amount, changed.addons_amount) == (5_000, 1_500, 1_100)
    assert changed.amount == 7_600
    change = PledgeChange.objects.get(pledge=held)
    assert (change.from_amount, change.to_amount, change.difference) == (6_300, 7_600, 1_300)
    assert (change.from_shipping_amount, change.to_shipping_amount) == (300, 1_500)
    assert net_charged(changed) == 7_600
    assert carried(changed) == {sticker.pk: 1, badge.pk: 3}
    assert (claimed(sticker), claimed(badge)) == (1, 3)
    assert raised(campaign) == escrow_balance(campaign) == 7_600
    assert invariant_problems() == []


def test_an_amount_names_the_pledge_and_its_shipping_the_add_ons_come_on_top(campaign, held, mug, sticker):
    changed = pledge_change(
        pledge=held,
        actor=held.backer,
        amount=6_000,  # 55.00 pledged + 5.00 shipping to Germany
        reward=mug,
        shipping_country="DE",
        addons={sticker.pk: 0},
        payment_token=VISA,
        idempotency_key=new_key(),
    )

    assert (changed.pledged_amount, changed.shipping_amount, changed.addons_amount) == (5_500, 500, 0)
    assert changed.amount == 6_000
    assert net_charged(changed) == 6_000  # 3.00 refunded
    assert carried(changed) == {}
    assert claimed(sticker) == 0
    assert raised(campaign) == 6_000
    assert invariant_problems() == []


def test_add_ons_do_not_count_toward_the_new_rewards_minimum_and_a_refusal_changes_nothing(held, mug, sticker):
    with pytest.raises(InvalidInput) as error:
        pledge_change(
            pledge=held,
            actor=held.backer,
            amount=5_400,  # 49.00 pledged + 5.00 shipping to Germany: under the mug's 50.00
            reward=mug,
            shipping_country="DE",
            addons={sticker.pk: 5},
            payment_token=VISA,
            idempotency_key=new_key(),
        )

    assert error.value.code == "below_reward_minimum"
    after = Pledge.objects.get(pk=held.pk)
    assert (after.amount, after.reward_id, after.shipping_country, after.addons_amount) == (
        6_300,
        held.reward_id,
        "FR",
        1_000,
    )
    assert carried(after) == {sticker.pk: 2}
    assert claimed(sticker) == 2
    assert not PledgeChange.objects.filter(pledge=held).exists()
    assert invariant_problems() == []


def test_the_api_changes_country_and_add_ons_in_one_request(held, sticker, badge):
    client = api_client(held.backer)

    response = client.post(
        f"/api/v1/pledges/{held.pk}/change/",
        {"shipping_country": "DE", "addons": [{"addon": badge.pk, "quantity": 2}], "payment_token": VISA},
        format="json",
        HTTP_IDEMPOTENCY_KEY="change-1",
    )

    # The tote ships to Germany at the EU price, quoted again (3.00); two badges come on top.
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["amount"], body["addons_amount"]) == (6_700, 1_400)
    assert body["shipping_country"] == "DE"
    assert carried(held) == {sticker.pk: 2, badge.pk: 2}
    assert invariant_problems() == []


def test_manage_your_pledge_moves_reward_country_and_add_ons_in_one_step(client, campaign, held, mug, sticker, badge):
    client.force_login(held.backer)
    page = client.get(f"/pledges/{held.pk}/manage/?reward={mug.pk}").content.decode()
    assert 'value="59.00"' in page  # 50.00 pledged + the mug's 9.00 to France; the add-ons come on top

    response = client.post(
        f"/pledges/{held.pk}/manage/",
        {
            "amount": "65.00",  # 50.00 pledged + 15.00 shipping to the US
            "reward": str(mug.pk),
            "shipping_country": "US",
            f"addon_{sticker.pk}": "2",
            f"addon_{badge.pk}": "1",
            "card_number": "4242 4242 4242 4242",
            "expiry": "12/40",
            "cvc": "123",
            "idempotency_key": "web-all-at-once",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    after = Pledge.objects.get(pk=held.pk)
    assert (after.reward_id, after.shipping_country, after.shipping_amount) == (mug.pk, "US", 1_500)
    assert (after.amount, after.addons_amount) == (7_700, 1_200)
    assert net_charged(after) == 7_700
    assert carried(after) == {sticker.pk: 2, badge.pk: 1}
    assert raised(campaign) == 7_700
    assert invariant_problems() == []

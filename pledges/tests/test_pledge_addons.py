"""Add-ons through a pledge's life: added at pledge time and by changes, charged, refunded and released with it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import FinanceFactory, UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, PaymentDeclined
from pledges.changes import pledge_change
from pledges.models import PledgeAddOn, PledgeStatus
from pledges.services import pledge_cancel, pledge_create, pledge_refund
from pledges.tests.factories import new_key
from projects.addons import addon_create, addon_delete, addon_update
from projects.models import AddOn, Campaign, CampaignStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.tests.checks import escrow_balance, invariant_problems, money_state, net_charged

pytestmark = pytest.mark.django_db

VISA = "tok_visa"


def make_addon(campaign, *, price=500, limit=None, title="Sticker pack") -> AddOn:
    return addon_create(campaign=campaign, actor=campaign.initiator, title=title, price=price, quantity_limit=limit)


def pledge(campaign, backer, amount=2_000, *, addons=None, reward=None, key=None, token=VISA):
    return pledge_create(
        backer=backer,
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token=token,
        idempotency_key=key or new_key(),
        reward=reward,
        addons=addons,
    )


def change(held, *, amount=None, addons=None, token=VISA, key=None):
    return pledge_change(
        pledge=held,
        actor=held.backer,
        amount=amount,
        addons=addons,
        payment_token=token,
        idempotency_key=key or new_key(),
    )


def carried(held) -> dict[int, int]:
    return dict(PledgeAddOn.objects.filter(pledge=held).values_list("addon_id", "quantity"))


def claimed(addon) -> int:
    addon.refresh_from_db()
    return addon.claimed_count


def test_a_pledge_with_add_ons_charges_and_holds_the_whole(live_campaign, backer):
    sticker = make_addon(live_campaign, price=500)
    poster = make_addon(live_campaign, price=1_500, limit=10, title="Poster")

    held = pledge(live_campaign, backer, 2_000, addons={sticker.pk: 2, poster.pk: 1})

    assert held.status == PledgeStatus.HELD
    assert (held.amount, held.addons_amount, held.pledged_amount) == (2_000 + 1_000 + 1_500, 2_500, 2_000)
    assert net_charged(held) == 4_500  # the card pays pledge and add-ons in one charge
    assert escrow_balance(live_campaign) == 4_500
    live_campaign.refresh_from_db()
    assert live_campaign.pledged_amount == 4_500
    assert carried(held) == {sticker.pk: 2, poster.pk: 1}
    assert (claimed(sticker), claimed(poster)) == (2, 1)
    assert invariant_problems() == []


def test_a_reward_minimum_is_met_by_the_pledge_not_by_its_add_ons(live_campaign, backer):
    reward = RewardTierFactory(campaign=live_campaign, minimum_amount=3_000)
    sticker = make_addon(live_campaign, price=500)
    before = money_state()
    with pytest.raises(InvalidInput) as error:
        pledge(live_campaign, backer, 2_000, reward=reward, addons={sticker.pk: 4})
    assert error.value.code == "below_reward_minimum"
    assert money_state() == before


def test_a_retry_of_a_pledge_with_add_ons_charges_once(live_campaign, backer):
    sticker = make_addon(live_campaign)
    key = new_key()
    first = pledge(live_campaign, backer, addons={sticker.pk: 3}, key=key)
    again = pledge(live_campaign, backer, addons={sticker.pk: 3}, key=key)
    assert again.pk == first.pk
    assert claimed(sticker) == 3
    with pytest.raises(Conflict) as error:  # the same key for other add-ons
        pledge(live_campaign, backer, addons={sticker.pk: 1}, key=key)
    assert error.value.code == "idempotency_key_reused"


def test_changing_add_on_quantities_up_and_down_moves_only_the_difference(live_campaign, backer):
    sticker = make_addon(live_campaign, price=500, limit=20)
    poster = make_addon(live_campaign, price=1_500, title="Poster")
    held = pledge(live_campaign, backer, 2_000, addons={sticker.pk: 1})

    held = change(held, addons={sticker.pk: 4, poster.pk: 2})  # +1,500 stickers, +3,000 posters
    assert (held.amount, held.addons_amount) == (2_000 + 2_000 + 3_000, 5_000)
    assert net_charged(held) == 7_000
    assert carried(held) == {sticker.pk: 4, poster.pk: 2}
    assert (claimed(sticker), claimed(poster)) == (4, 2)

    held = change(held, addons={sticker.pk: 0})  # drop the stickers; the posters stay
    assert (held.amount, held.addons_amount) == (5_000, 3_000)
    assert net_charged(held) == 5_000  # 2,000 refunded
    assert carried(held) == {poster.pk: 2}
    assert (claimed(sticker), claimed(poster)) == (0, 2)

    held = change(held, amount=1_000)  # a new amount keeps the add-ons on top
    assert (held.amount, held.addons_amount) == (4_000, 3_000)
    assert net_charged(held) == 4_000
    assert escrow_balance(live_campaign) == 4_000
    assert invariant_problems() == []


def test_a_change_taking_more_add_ons_than_are_left_is_refused_and_changes_nothing(live_campaign, backer):
    poster = make_addon(live_campaign, price=1_500, limit=3, title="Poster")
    held = pledge(live_campaign, backer, addons={poster.pk: 1})
    pledge(live_campaign, UserFactory(), addons={poster.pk: 1})
    before = money_state()
    with pytest.raises(Conflict) as error:
        change(held, addons={poster.pk: 3})  # two more, one left
    assert error.value.code == "addon_sold_out"
    assert "Only 1" in error.value.message
    assert money_state() == before


def test_a_declined_change_gives_back_the_units_it_claimed(live_campaign, backer):
    poster = make_addon(live_campaign, price=1_500, limit=3, title="Poster")
    held = pledge(live_campaign, backer, addons={poster.pk: 1})
    with pytest.raises(PaymentDeclined) as error:
        change(held, addons={poster.pk: 3}, token="tok_chargeDeclined")
    assert error.value.code == "card_declined"
    assert claimed(poster) == 1
    assert carried(held) == {poster.pk: 1}
    assert invariant_problems() == []


def test_cancelling_refunds_the_add_ons_with_the_pledge_and_frees_their_units(live_campaign, backer):
    poster = make_addon(live_campaign, price=1_500, limit=2, title="Poster")
    held = pledge(live_campaign, backer, addons={poster.pk: 2})
    with pytest.raises(Conflict):
        pledge(live_campaign, UserFactory(), addons={poster.pk: 1})  # sold out meanwhile

    pledge_cancel(pledge=held, actor=backer)

    held.refresh_from_db()
    assert held.status == PledgeStatus.CANCELLED
    assert net_charged(held) == 0
    assert escrow_balance(live_campaign) == 0
    assert claimed(poster) == 0
    assert carried(held) == {poster.pk: 2}  # the record of what it carried stays
    assert pledge(live_campaign, UserFactory(), addons={poster.pk: 1}).status == PledgeStatus.HELD
    assert invariant_problems() == []


def test_a_declined_pledge_frees_its_add_on_units(live_campaign, backer):
    poster = make_addon(live_campaign, price=1_500, limit=2, title="Poster")
    with pytest.raises(PaymentDeclined) as error:
        pledge(live_campaign, backer, addons={poster.pk: 2}, token="tok_chargeDeclined")
    assert error.value.code == "card_declined"
    assert claimed(poster) == 0
    assert invariant_problems() == []


def test_a_staff_refund_refunds_the_add_ons(live_campaign, backer):
    sticker = make_addon(live_campaign)
    held = pledge(live_campaign, backer, addons={sticker.pk: 2})
    pledge_refund(pledge=held, actor=FinanceFactory(), reason="asked by the backer")
    assert net_charged(held) == 0
    assert claimed(sticker) == 0
    assert invariant_problems() == []


@pytest.mark.parametrize("succeeds", [True, False])
def test_add_ons_are_released_or_refunded_with_their_pledge_at_settlement(live_campaign, backer, succeeds):
    sticker = make_addon(live_campaign, price=500, limit=50)
    held = pledge(live_campaign, backer, 2_000, addons={sticker.pk: 2})
    change(held, addons={sticker.pk: 5})
    if succeeds:
        pledge(live_campaign, UserFactory(), live_campaign.goal, addons={sticker.pk: 1})
    Campaign.objects.filter(pk=live_campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    campaigns_close_due()
    settlement_run(campaign_id=live_campaign.pk)
    held.refresh_from_db()
    live_campaign.refresh_from_db()
    assert live_campaign.status == (CampaignStatus.SUCCEEDED if succeeds else CampaignStatus.FAILED)
    assert held.status == (PledgeStatus.RELEASED if succeeds else PledgeStatus.REFUNDED)
    assert net_charged(held) == (2_000 + 2_500 if succeeds else 0)
    assert escrow_balance(live_campaign) == 0
    assert invariant_problems() == []


@pytest.mark.parametrize(
    ("requested", "code"),
    [
        ({"quantity": 11}, "addon_quantity_above_limit"),
        ({"quantity": -1}, "invalid_addon_quantity"),
        ({"quantity": "2"}, "invalid_addon_quantity"),
        ({"unknown": True, "quantity": 1}, "invalid_addon"),
        ({"other_campaign": True, "quantity": 1}, "invalid_addon"),
    ],
)
def test_bad_add_on_input_is_refused_and_nothing_changes(live_campaign, backer, requested, code):
    sticker = make_addon(live_campaign)
    other = make_addon(LiveCampaignFactory(), title="Elsewhere")
    held = pledge(live_campaign, backer, addons={sticker.pk: 1})
    addon_id = sticker.pk
    if requested.get("other_campaign"):
        addon_id = other.pk
    elif requested.get("unknown"):
        addon_id = other.pk + 1_000
    before = money_state()
    with pytest.raises(InvalidInput) as error:
        pledge(live_campaign, UserFactory(), addons={addon_id: requested["quantity"]})
    assert (error.value.code, error.value.field) == (code, "addons")
    with pytest.raises(InvalidInput) as error:
        change(held, addons={addon_id: requested["quantity"]})
    assert error.value.code == code
    assert money_state() == before


def test_the_per_backer_maximum_is_a_setting(live_campaign, backer, settings):
    settings.ADDONS_MAX_PER_BACKER = 3
    sticker = make_addon(live_campaign)
    with pytest.raises(InvalidInput) as error:
        pledge(live_campaign, backer, addons={sticker.pk: 4})
    assert "at most 3" in error.value.message
    assert pledge(live_campaign, backer, addons={sticker.pk: 3}).addons_amount == 1_500


def test_an_initiator_cannot_lower_a_limit_below_what_is_taken_nor_reprice_after_launch(live_campaign, backer):
    poster = make_addon(live_campaign, price=1_500, limit=5, title="Poster")
    pledge(live_campaign, backer, addons={poster.pk: 3})
    with pytest.raises(Conflict) as error:
        addon_update(addon=poster, actor=live_campaign.initiator, quantity_limit=2)
    assert error.value.code == "addon_limit_below_taken"
    with pytest.raises(Conflict) as error:
        addon_update(addon=poster, actor=live_campaign.initiator, price=2_000)
    assert error.value.code == "addon_price_locked"
    with pytest.raises(Conflict) as error:
        addon_delete(addon=poster, actor=live_campaign.initiator)
    assert error.value.code == "addon_taken"
    assert addon_update(addon=poster, actor=live_campaign.initiator, quantity_limit=3).sold_out


def test_a_retried_change_of_add_ons_moves_money_once(live_campaign, backer):
    sticker = make_addon(live_campaign, price=500)
    held = pledge(live_campaign, backer, 2_000, addons={sticker.pk: 1})
    key = new_key()
    first = change(held, addons={sticker.pk: 3}, key=key)
    again = change(held, addons={sticker.pk: 3}, key=key)
    assert again.amount == first.amount == 3_500
    assert net_charged(held) == 3_500
    assert claimed(sticker) == 3
    assert invariant_problems() == []

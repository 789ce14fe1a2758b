"""A next price step opened on a limited tier of a live campaign (what pricing advice applies):
the slots so far keep their price, the new ones cost more, nobody who backed pays more."""

import pytest

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from pledges.services import pledge_create
from pledges.tests.factories import new_key, pledge_held
from projects.models import RewardTierChange
from projects.pricing import price_now, quote_read, quote_sign
from projects.services import reward_price_step_open
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db


def _pledge(campaign, reward, amount, quote=""):
    return pledge_create(
        backer=UserFactory(),
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token="tok_visa",
        idempotency_key=new_key(),
        reward=reward,
        price_quote=quote,
    )


def test_the_first_slots_keep_their_price_the_next_ones_cost_more_and_backers_pay_the_same():
    campaign = LiveCampaignFactory(goal=100_000)
    tier = RewardTierFactory(campaign=campaign, title="Mug", minimum_amount=2_000, quantity_limit=3)
    early = pledge_held(campaign=campaign, reward=tier, amount=2_000)
    quote = quote_sign(tier, price_now(tier))  # a backer opened the form at $20.00

    tier = reward_price_step_open(reward=tier, actor=campaign.initiator, price=2_500, slots=2)
    assert (tier.quantity_limit, tier.minimum_amount) == (5, 2_500)
    assert tier.price_steps == [{"price": 2_000, "until_claimed": 3, "until": None}]
    change = RewardTierChange.objects.get(reward=tier)
    assert change.changes["minimum_amount"] == [2_000, 2_500]
    assert change.changes["quantity_limit"] == [3, 5]
    early.refresh_from_db()
    assert early.amount == 2_000

    # The quote of the old price after the steps is asked again: it is still $20.00 for now.
    assert quote_read(tier, quote) is None
    assert _pledge(campaign, tier, 2_000, quote=quote).amount == 2_000
    assert _pledge(campaign, tier, 2_000).amount == 2_000  # the 3rd slot, at the old price
    tier.refresh_from_db()
    with pytest.raises(InvalidInput) as refused:
        _pledge(campaign, tier, 2_000)  # the old price's slots are gone
    assert "at least $25.00" in refused.value.message
    assert _pledge(campaign, tier, 2_500).amount == 2_500
    tier.refresh_from_db()
    assert tier.claimed_count == 4


@pytest.mark.parametrize(
    ("price", "slots", "error", "code"),
    [
        (2_000, 2, InvalidInput, "price_step_below_previous"),
        (1_500, 2, InvalidInput, "price_step_below_previous"),
        (0, 2, InvalidInput, None),
        (2_500, 0, InvalidInput, "invalid_quantity"),
        (2_500, 10**10, InvalidInput, "invalid_quantity"),
        (2_500, True, InvalidInput, "invalid_quantity"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(price, slots, error, code):
    campaign = LiveCampaignFactory()
    tier = RewardTierFactory(campaign=campaign, minimum_amount=2_000, quantity_limit=3)
    with pytest.raises(error) as refused:
        reward_price_step_open(reward=tier, actor=campaign.initiator, price=price, slots=slots)
    if code:
        assert refused.value.code == code
    tier.refresh_from_db()
    assert (tier.quantity_limit, tier.minimum_amount, tier.price_steps) == (3, 2_000, [])
    assert not RewardTierChange.objects.exists()


def test_refused_for_an_unlimited_tier_a_campaign_not_live_too_many_steps_or_someone_else():
    campaign = LiveCampaignFactory()
    unlimited = RewardTierFactory(campaign=campaign, minimum_amount=2_000)
    with pytest.raises(Conflict) as refused:
        reward_price_step_open(reward=unlimited, actor=campaign.initiator, price=2_500, slots=2)
    assert refused.value.code == "reward_unlimited"
    limited = RewardTierFactory(campaign=campaign, minimum_amount=2_000, quantity_limit=3)
    with pytest.raises(NotAllowed):
        reward_price_step_open(reward=limited, actor=UserFactory(), price=2_500, slots=2)
    draft = CampaignFactory()
    drafted = RewardTierFactory(campaign=draft, minimum_amount=2_000, quantity_limit=3)
    with pytest.raises(Conflict) as refused:
        reward_price_step_open(reward=drafted, actor=draft.initiator, price=2_500, slots=2)
    assert refused.value.code == "invalid_state"
    full = RewardTierFactory(
        campaign=campaign,
        minimum_amount=2_000,
        quantity_limit=30,
        price_steps=[{"price": 1_000 + n, "until_claimed": n + 1, "until": None} for n in range(10)],
    )
    with pytest.raises(Conflict) as refused:
        reward_price_step_open(reward=full, actor=campaign.initiator, price=2_500, slots=2)
    assert "at most 10 price steps" in refused.value.message
    for tier in (unlimited, limited, drafted, full):
        before = tier.quantity_limit, tier.minimum_amount
        tier.refresh_from_db()
        assert (tier.quantity_limit, tier.minimum_amount) == before
    assert not RewardTierChange.objects.exists()

"""Random sequences of changes of reward, country and amount on a shipped pledge, with the initiator
changing the shipping rules in between, keep every money invariant.

Each Hypothesis example starts from one live campaign with a mug (ships to Germany, the EU and
anywhere), a poster (the EU only) and an e-book (ships nothing), and one backer's pledge for the mug
shipped to France. Every step goes through the real services and the sandbox gateway. After each:
``ledger_verify()`` passes, the campaign's total is the pledge's whole, the card is out of pocket
exactly the whole, the whole covers the reward's minimum plus its shipping, and a refused step
changed nothing.
"""

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import ApplicationError
from escrow.models import LedgerTransaction
from pledges.changes import UNCHANGED, pledge_change
from pledges.models import Pledge
from pledges.services import pledge_create
from pledges.tests.factories import VISA, new_key
from projects.models import Campaign, RewardShippingRule
from projects.services import reward_tier_update
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory
from settlement.tests.checks import net_charged
from settlement.verification import ledger_verify

REWARDS = st.sampled_from(["mug", "poster", "ebook", "none", "keep"])
COUNTRIES = st.sampled_from([None, "DE", "FR", "US", "JP", "zz"])
AMOUNTS = st.one_of(st.none(), st.integers(min_value=-100, max_value=20_000))
CHANGE = st.tuples(st.just("change"), REWARDS, COUNTRIES, AMOUNTS)
# The initiator's new rules for the mug: cheaper, dearer, or no longer shipping outside the EU.
MUG_RULES = st.sampled_from(
    [
        [("DE", 300), ("eu", 700), ("anywhere", 1_200)],
        [("DE", 800), ("eu", 1_400), ("anywhere", 2_500)],
        [("eu", 900)],
    ]
)
STEPS = st.lists(st.one_of(CHANGE, CHANGE, CHANGE, st.tuples(st.just("rules"), MUG_RULES)), min_size=2, max_size=8)


def _reward_with_rules(campaign, title, rules, minimum):
    reward = RewardTierFactory(campaign=campaign, title=title, minimum_amount=minimum, ships=bool(rules))
    RewardShippingRule.objects.bulk_create(RewardShippingRule(reward=reward, destination=d, cost=c) for d, c in rules)
    return reward


def _state(pledge: Pledge) -> tuple:
    pledge.refresh_from_db()
    return (pledge.amount, pledge.reward_id, pledge.shipping_country, pledge.shipping_amount)


class ShippingChangeProperties(TestCase):
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=STEPS)
    def test_every_change_keeps_the_whole_the_shipping_and_the_ledger_in_agreement(self, steps):
        campaign = LiveCampaignFactory(goal=1_000_000)
        rewards = {
            "mug": _reward_with_rules(campaign, "Mug", [("DE", 500), ("eu", 900), ("anywhere", 1_500)], 2_500),
            "poster": _reward_with_rules(campaign, "Poster", [("DE", 200), ("eu", 300)], 1_500),
            "ebook": _reward_with_rules(campaign, "E-book", [], 500),
        }
        pledge = pledge_create(
            backer=UserFactory(),
            campaign=campaign,
            amount=3_000,
            currency=campaign.currency,
            payment_token=VISA,
            idempotency_key=new_key(),
            reward=rewards["mug"],
            shipping_country="FR",
        )
        for step in steps:
            before, postings = _state(pledge), LedgerTransaction.objects.count()
            if step[0] == "rules":
                rules = [{"destination": d, "cost": c} for d, c in step[1]]
                reward_tier_update(reward=rewards["mug"], actor=campaign.initiator, shipping_rules=rules)
                assert _state(pledge) == before  # a backer keeps the shipping they agreed to
            else:
                _kind, reward_name, country, amount = step
                reward = {"keep": UNCHANGED, "none": None}.get(reward_name, rewards.get(reward_name))
                try:
                    pledge_change(
                        pledge=pledge,
                        actor=pledge.backer,
                        amount=amount,
                        reward=reward,
                        shipping_country=country,
                        payment_token=VISA,
                        idempotency_key=new_key(),
                    )
                except ApplicationError as refused:
                    event(f"refused: {refused.code}")
                    assert _state(pledge) == before
                    assert LedgerTransaction.objects.count() == postings
                else:
                    event("shipping moved" if _state(pledge)[2:] != before[2:] else "changed, shipping kept")
            whole, _reward_id, shipping_country, shipping = _state(pledge)
            held = Pledge.objects.select_related("reward").get(pk=pledge.pk)
            if held.reward is not None:
                assert whole - shipping >= held.reward.minimum_amount
                assert bool(shipping_country) == held.reward.ships
            else:
                assert (shipping_country, shipping) == ("", 0)
            assert Campaign.objects.get(pk=campaign.pk).pledged_amount == whole
            assert net_charged(pledge) == whole
            assert ledger_verify() == []

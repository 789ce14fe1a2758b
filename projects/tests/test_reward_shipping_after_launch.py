"""Shipping rules after launch: destinations added and costs changed serve new pledges, while every
backer who already chose the reward keeps the shipping they agreed to; each change is audited."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from crowdfund_site.api.testing import api_client
from crowdfund_site.exceptions import Conflict, InvalidInput
from pledges.changes import pledge_change
from pledges.tests.factories import VISA, new_key
from pledges.tests.test_pledge_shipping import pledge_shipped, shipping_reward
from projects.models import CampaignStatus, RewardTierChange
from projects.selectors import reward_shipping_rules
from projects.services import reward_tier_update
from projects.tests.factories import LiveCampaignFactory
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db

RULES = [("DE", 500), ("FR", 900)]


def rules(*pairs) -> list[dict]:
    return [{"destination": destination, "cost": cost} for destination, cost in pairs]


@pytest.fixture
def campaign():
    return LiveCampaignFactory()


@pytest.fixture
def mug(campaign):
    return shipping_reward(campaign, rules=RULES, title="Mug")


def test_a_country_added_and_a_cost_lowered_serve_new_pledges_and_are_audited(campaign, mug):
    reward_tier_update(
        reward=mug, actor=campaign.initiator, shipping_rules=rules(("DE", 300), ("FR", 900), ("JP", 2_000))
    )

    assert reward_shipping_rules(reward=mug) == [("DE", 300), ("FR", 900), ("JP", 2_000)]
    assert pledge_shipped(campaign=campaign, reward=mug, country="JP").shipping_amount == 2_000
    assert pledge_shipped(campaign=campaign, reward=mug, country="DE").shipping_amount == 300
    event = AuditEvent.objects.get(action="reward_shipping_change")
    assert (event.actor_id, event.object_id) == (campaign.initiator.pk, str(mug.pk))
    assert event.details == {
        "added": ["JP"],
        "removed": [],
        "raised": [],
        "lowered": ["DE"],
        "backers_keeping_agreed_shipping": 0,
    }
    change = RewardTierChange.objects.get(reward=mug)
    assert change.changes["shipping_rules"][0] == [["DE", 500], ["FR", 900]]
    assert ledger_verify() == []


def test_a_cost_raised_or_a_country_removed_applies_to_new_pledges_only(campaign, mug):
    in_france = pledge_shipped(campaign=campaign, reward=mug, country="FR")  # agreed 9.00
    in_germany = pledge_shipped(campaign=campaign, reward=mug, country="DE")  # agreed 5.00

    updated = reward_tier_update(reward=mug, actor=campaign.initiator, shipping_rules=rules(("FR", 1_200)))

    # Both backers keep what they agreed to: France now costs more, Germany is no longer served.
    assert updated.shipping_kept_by == 2
    for pledge, agreed in ((in_france, (5_900, 900)), (in_germany, (5_500, 500))):
        pledge.refresh_from_db()
        assert (pledge.amount, pledge.shipping_amount) == agreed
    assert AuditEvent.objects.get(action="reward_shipping_change").details["backers_keeping_agreed_shipping"] == 2
    # A new backer in France pays the new cost; one in Germany cannot choose it any more.
    assert pledge_shipped(campaign=campaign, reward=mug, country="FR").shipping_amount == 1_200
    with pytest.raises(InvalidInput) as refused:
        pledge_shipped(campaign=campaign, reward=mug, country="DE")
    assert refused.value.code == "does_not_ship_there"
    # A backer who changes only the amount keeps the shipping they agreed to.
    changed = pledge_change(
        pledge=in_germany, actor=in_germany.backer, amount=7_500, payment_token=VISA, idempotency_key=new_key()
    )
    assert (changed.amount, changed.shipping_country, changed.shipping_amount) == (7_500, "DE", 500)
    assert ledger_verify() == []


def test_after_the_campaign_ended_the_rules_stay(campaign, mug):
    type(campaign).objects.filter(pk=campaign.pk).update(status=CampaignStatus.SUCCEEDED)

    with pytest.raises(Conflict) as refused:
        reward_tier_update(reward=mug, actor=campaign.initiator, shipping_rules=rules(("DE", 100)))

    assert refused.value.code == "reward_locked"
    assert reward_shipping_rules(reward=mug) == RULES
    assert not AuditEvent.objects.filter(action="reward_shipping_change").exists()


def test_bad_rules_after_launch_are_refused_and_nothing_changes(campaign, mug):
    with pytest.raises(InvalidInput) as refused:
        reward_tier_update(reward=mug, actor=campaign.initiator, shipping_rules=[])

    assert refused.value.code == "shipping_rules_required"
    assert reward_shipping_rules(reward=mug) == RULES
    assert not RewardTierChange.objects.exists()


def test_only_the_initiator_may_change_them_through_the_api(campaign, mug):
    url = f"/api/v1/campaigns/{campaign.pk}/rewards/{mug.pk}/"
    body = {"shipping_rules": rules(("DE", 500), ("FR", 900), ("anywhere", 2_500))}

    stranger = api_client(pledge_shipped(campaign=campaign, reward=mug, country="FR").backer)
    assert stranger.patch(url, body, format="json").status_code in (403, 404)
    response = api_client(campaign.initiator).patch(url, body, format="json")

    assert response.status_code == 200, response.content
    assert reward_shipping_rules(reward=mug) == [("DE", 500), ("FR", 900), ("anywhere", 2_500)]


def test_the_reward_editor_explains_it_and_says_who_keeps_their_shipping(client, campaign, mug):
    pledge_shipped(campaign=campaign, reward=mug, country="FR")
    client.force_login(campaign.initiator)
    url = reverse("projects:campaign_reward_edit", kwargs={"slug": campaign.slug, "reward_id": mug.pk})

    page = client.get(url).content.decode()
    assert "backers who already chose this reward keep the shipping they agreed to" in page
    response = client.post(
        url,
        {"title": mug.title, "minimum_amount": "50", "description": mug.description, "shipping_rules": "FR 12\nDE 5"},
        follow=True,
    )

    assert "1 backer who chose it before keeps the shipping they agreed to." in response.content.decode()
    assert reward_shipping_rules(reward=mug) == [("FR", 1_200), ("DE", 500)]


def test_the_reward_editor_speaks_chinese_about_it(client, settings, campaign, mug):
    client.force_login(campaign.initiator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    url = reverse("projects:campaign_reward_edit", kwargs={"slug": campaign.slug, "reward_id": mug.pk})

    page = client.get(url).content.decode()

    assert "已经选择此回报的支持者保留他们当初同意的运费" in page

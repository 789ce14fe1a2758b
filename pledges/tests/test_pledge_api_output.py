"""The pledge API's answer with fields built once per class (crowdfund_site.api.fields.FieldsBuiltOnce).

Each pledge must still come out as itself: its own campaign, reward, amounts and dates, whichever
pledge was serialised first, and from any number of threads at once.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework import serializers

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client
from pledges.api import PledgeSerializer
from pledges.models import Pledge
from pledges.tests.factories import pledge_held
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

pytestmark = pytest.mark.django_db


def _expected(pledge: Pledge) -> dict:
    """Return DRF's own answer, fields built for this object: what every answer must equal."""

    class Plain(serializers.ModelSerializer):  # PledgeSerializer's declaration without the mixin
        campaign = PledgeSerializer.CampaignSummarySerializer()
        reward = PledgeSerializer.RewardSummarySerializer(allow_null=True)
        addons = serializers.SerializerMethodField()
        get_addons = PledgeSerializer.get_addons

        class Meta(PledgeSerializer.Meta):
            pass

    return Plain(pledge).data


@pytest.fixture
def pledges():
    campaigns = [LiveCampaignFactory(), LiveCampaignFactory()]
    reward = RewardTierFactory(campaign=campaigns[1], minimum_amount=1_000)
    made = [pledge_held(campaign=campaigns[0], amount=2_500), pledge_held(campaign=campaigns[1], amount=7_000)]
    made.append(pledge_held(campaign=campaigns[1], amount=3_000, reward=reward))
    return list(Pledge.objects.select_related("campaign", "reward").filter(pk__in=[p.pk for p in made]).order_by("pk"))


def test_each_pledge_comes_out_as_itself(pledges):
    answers = [PledgeSerializer(p).data for p in pledges]

    for pledge, answer in zip(pledges, answers, strict=True):
        assert answer == _expected(pledge)
        assert answer["id"] == pledge.pk
        assert answer["campaign"]["slug"] == pledge.campaign.slug
        assert answer["amount"] == pledge.amount
    assert answers[0]["reward"] is None
    assert answers[2]["reward"] == {"id": pledges[2].reward_id, "title": pledges[2].reward.title}


def test_threads_at_once_each_get_their_own_pledge(pledges):
    work = pledges * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda p: PledgeSerializer(p).data, work))

    for pledge, answer in zip(work, answers, strict=True):
        assert answer == _expected(pledge)


def test_the_list_with_history_shows_each_pledge():
    backer = UserFactory()
    campaigns = [LiveCampaignFactory(), LiveCampaignFactory()]
    made = [pledge_held(campaign=c, backer=backer, amount=1_000 * (i + 2)) for i, c in enumerate(campaigns)]

    answers = api_client(backer).get("/api/v1/pledges/").json()["results"]

    assert [(a["id"], a["campaign"]["id"], a["amount"]) for a in answers] == [
        (p.pk, p.campaign_id, p.amount) for p in reversed(made)
    ]
    assert all(a["changes"] == [] for a in answers)


def test_a_serializer_given_context_builds_its_own_fields(pledges):
    shared = PledgeSerializer(pledges[0])
    own = PledgeSerializer(pledges[0], context={"note": 1})

    assert own.fields is not shared.fields
    assert own.data == shared.data


def test_the_api_answers_a_new_pledge_with_it(live_campaign):
    client = api_client(UserFactory())
    data = {"amount": 2_500, "currency": "USD", "payment_token": "tok_visa"}

    first = client.post(f"/api/v1/campaigns/{live_campaign.pk}/pledges/", data, format="json", HTTP_IDEMPOTENCY_KEY="a")
    other = LiveCampaignFactory()
    second = api_client(UserFactory()).post(
        f"/api/v1/campaigns/{other.pk}/pledges/", {**data, "amount": 4_000}, format="json", HTTP_IDEMPOTENCY_KEY="b"
    )

    assert first.status_code == second.status_code == 201
    assert (first.json()["campaign"]["id"], first.json()["amount"]) == (live_campaign.pk, 2_500)
    assert (second.json()["campaign"]["id"], second.json()["amount"]) == (other.pk, 4_000)
    assert second.json() == _expected(Pledge.objects.select_related("campaign", "reward").get(pk=second.json()["id"]))

"""Backer surveys: sent once after success, answered in My pledges and the API, exported by the
initiator only, addresses erased a set time after the reward shipped."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from crowdfund_site.exceptions import Conflict, InvalidInput, NotFound
from fulfilment.models import SurveyAnswer
from fulfilment.services import survey_addresses_erase, survey_answer, survey_send, tier_mark_shipped
from pledges.models import Pledge

from .helpers import funded_campaign_with_rewards, succeed

pytestmark = pytest.mark.django_db


def _surveyed():
    campaign, (mug, shirt) = funded_campaign_with_rewards(amounts=[10_000, 20_000])
    campaign = succeed(campaign)
    survey = survey_send(
        campaign_id=campaign.pk,
        actor=campaign.initiator,
        asks_address=True,
        questions=[(None, "Anything else?"), (shirt.pk, "Size?")],
    )
    mug_pledge, shirt_pledge = Pledge.objects.filter(campaign=campaign).order_by("id")
    return campaign, survey, mug, shirt, mug_pledge, shirt_pledge


def test_backers_answer_the_initiator_exports_and_no_one_else_sees_addresses(
    client, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        campaign, survey, _mug, _shirt, mug_pledge, shirt_pledge = _surveyed()
    asked = [m for m in mail.outbox if "needs a few answers" in m.subject]
    assert sorted(m.to[0] for m in asked) == sorted([mug_pledge.backer.email, shirt_pledge.backer.email])
    size = survey.questions.get(prompt="Size?")
    client.force_login(shirt_pledge.backer)
    page = client.get("/pledges/").content.decode()
    assert "Size?" in page
    assert "Shipping address (seen by the initiator only)" in page
    client.post(f"/fulfilment/pledges/{shirt_pledge.pk}/survey/", {"address": "1 Main St", f"answer_{size.pk}": "L"})
    assert SurveyAnswer.objects.get(pledge=shirt_pledge).answers == {str(size.pk): "L"}
    with pytest.raises(InvalidInput, match="not asked"):  # the mug's backer is not asked the size
        survey_answer(
            pledge_id=mug_pledge.pk, actor=mug_pledge.backer, address="2 Side St", answers={str(size.pk): "M"}
        )
    url = f"/fulfilment/campaigns/{campaign.slug}/survey/answers.csv"
    assert client.get(url).status_code == 404  # a backer
    client.force_login(campaign.initiator)
    csv = client.get(url).content.decode()
    assert "1 Main St" in csv
    assert "Size?" in csv
    api = client.get(f"/api/v1/campaigns/{campaign.pk}/survey/answers/")
    assert api.status_code == 200
    assert api.json()[0]["address"] == "1 Main St"
    client.force_login(mug_pledge.backer)
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/survey/answers/").status_code == 404


def test_a_ten_thousand_character_answer_gets_a_clear_error_and_nothing_is_saved(client):
    _campaign, survey, _mug, _shirt, _mug_pledge, shirt_pledge = _surveyed()
    size = survey.questions.get(prompt="Size?")
    with pytest.raises(InvalidInput, match="At most 1000 characters"):
        survey_answer(
            pledge_id=shirt_pledge.pk, actor=shirt_pledge.backer, address="x", answers={str(size.pk): "L" * 10_000}
        )
    client.force_login(shirt_pledge.backer)
    response = client.put(
        f"/api/v1/pledges/{shirt_pledge.pk}/survey-answer/",
        {"address": "x", "answers": {str(size.pk): "L" * 10_000}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "1000" in response.content.decode()
    assert not SurveyAnswer.objects.exists()


def test_a_survey_is_sent_once_by_its_initiator_only():
    campaign, _survey, _mug, _shirt, mug_pledge, _shirt_pledge = _surveyed()
    with pytest.raises(Conflict, match="already sent"):
        survey_send(campaign_id=campaign.pk, actor=campaign.initiator, asks_address=True, questions=[])
    with pytest.raises(NotFound):
        survey_send(campaign_id=campaign.pk, actor=mug_pledge.backer, asks_address=True, questions=[])
    with pytest.raises(NotFound):  # someone else's pledge
        survey_answer(pledge_id=mug_pledge.pk, actor=campaign.initiator, address="x")


def test_addresses_are_erased_the_set_days_after_the_reward_shipped_once(settings):
    campaign, _survey, mug, shirt, mug_pledge, shirt_pledge = _surveyed()
    survey_answer(pledge_id=mug_pledge.pk, actor=mug_pledge.backer, address="2 Side St")
    survey_answer(pledge_id=shirt_pledge.pk, actor=shirt_pledge.backer, address="1 Main St")
    today = timezone.localdate()
    tier_mark_shipped(tier_id=mug.pk, actor=campaign.initiator, shipped_on=today - timedelta(days=180))
    tier_mark_shipped(tier_id=shirt.pk, actor=campaign.initiator, shipped_on=today - timedelta(days=179))
    assert survey_addresses_erase() == 1
    assert survey_addresses_erase() == 0
    assert SurveyAnswer.objects.get(pledge=mug_pledge).address == ""
    assert SurveyAnswer.objects.get(pledge=shirt_pledge).address == "1 Main St"
    with pytest.raises(Conflict, match="closed"):
        survey_answer(pledge_id=mug_pledge.pk, actor=mug_pledge.backer, address="again")

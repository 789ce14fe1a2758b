"""Fraud signals on pledges: card testing and self-backing raise alerts, ordinary pledging none."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import PaymentDeclined
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus, CampaignStatusChange
from projects.tests.factories import LiveCampaignFactory
from risk import tasks
from risk.models import FraudAlert, PledgeRiskCheck
from risk.selectors import pledge_fraud_evaluation
from risk.services import risk_check_pledge, risk_check_recent_pledges

from .factories import pledge_history

pytestmark = pytest.mark.django_db


def _declined(*, campaign, backer, card="tok_chargeDeclined"):
    with pytest.raises(PaymentDeclined):
        pledge_held(campaign=campaign, backer=backer, token=card)


def test_card_testing_raises_an_alert_but_does_not_suspend_the_campaign(live_campaign):
    tester = UserFactory()
    for card in ["tok_chargeDeclined", "tok_insufficientFunds", "tok_chargeDeclined", "tok_chargeDeclined"]:
        _declined(campaign=live_campaign, backer=tester, card=card)
    working_card = pledge_held(campaign=live_campaign, backer=tester, amount=100)

    check = risk_check_pledge(pledge=working_card)

    alert = FraudAlert.objects.get()
    assert alert.risk_check == check
    assert (alert.campaign, alert.backer) == (live_campaign, tester)
    assert alert.probability >= 0.5
    assert "4 declined cards in the hour before." in alert.reasons
    assert not alert.campaign_suspended
    live_campaign.refresh_from_db()
    assert live_campaign.status == CampaignStatus.LIVE


def test_ordinary_pledging_raises_no_alert(live_campaign):
    other = LiveCampaignFactory()
    for _ in range(20):
        pledge_held(campaign=live_campaign)
    regular = UserFactory()
    pledge_held(campaign=live_campaign, backer=regular)
    pledge_held(campaign=other, backer=regular)
    clumsy = UserFactory()
    _declined(campaign=live_campaign, backer=clumsy)  # a mistyped card, then the right one
    pledge_held(campaign=live_campaign, backer=clumsy)

    assert risk_check_recent_pledges() == 23

    assert FraudAlert.objects.count() == 0
    assert PledgeRiskCheck.objects.filter(probability__gte=0.05).count() == 0
    assert risk_check_recent_pledges() == 0


def test_an_initiator_backing_their_own_campaign_with_their_card_gets_it_suspended(settings):
    settings.RISK_SHARED_PAYMENT_TOKENS = []  # let the sandbox's test cards stand for distinct real cards
    initiator = UserFactory()
    own = LiveCampaignFactory(initiator=initiator)
    pledge_held(campaign=LiveCampaignFactory(), backer=initiator, token="tok_mastercard")
    honest = pledge_held(campaign=own, token="tok_visa")
    sock_puppet = pledge_held(campaign=own, token="tok_mastercard")

    risk_check_pledge(pledge=honest)
    risk_check_pledge(pledge=sock_puppet)

    alert = FraudAlert.objects.get()
    assert alert.risk_check.pledge == sock_puppet
    assert alert.campaign_suspended
    assert "The campaign's initiator has paid with this card." in alert.reasons
    own.refresh_from_db()
    assert own.status == CampaignStatus.SUSPENDED
    change = CampaignStatusChange.objects.get(campaign=own, to_status=CampaignStatus.SUSPENDED)
    assert change.actor is None
    assert change.reason.startswith("Suspended automatically pending review")


def test_checking_a_pledge_twice_keeps_one_check_and_one_alert(live_campaign):
    tester = UserFactory()
    for _ in range(5):
        _declined(campaign=live_campaign, backer=tester)
    pledge = pledge_held(campaign=live_campaign, backer=tester)

    first = risk_check_pledge(pledge=pledge)
    again = risk_check_pledge(pledge=pledge)

    assert again.pk == first.pk
    assert FraudAlert.objects.count() == 1


def test_ip_signals_are_skipped_without_an_ip_and_used_with_one(live_campaign):
    initiator_pledge = pledge_held(campaign=LiveCampaignFactory(), backer=live_campaign.initiator)
    risk_check_pledge(pledge=initiator_pledge, ip="203.0.113.7")
    suspicious = pledge_held(campaign=live_campaign)

    without_ip = pledge_fraud_evaluation(pledge=suspicious)
    with_ip = pledge_fraud_evaluation(pledge=suspicious, ip="203.0.113.7")

    assert without_ip.signals_json()["initiator_ip"]["value"] is None
    assert "The campaign's initiator has pledged from this IP address." in with_ip.reasons
    assert with_ip.probability > 10 * without_ip.probability


def test_a_spike_far_above_the_campaigns_own_rate_is_reported():
    now = timezone.now()
    campaign = LiveCampaignFactory(launched_at=now - timedelta(days=2))
    steady = [campaign.launched_at + timedelta(hours=4 * i) for i in range(12)]
    burst = [now - timedelta(minutes=50) + timedelta(minutes=i) for i in range(30)]
    pledges = pledge_history(campaign, times=steady + burst, amounts=[2_000] * 42)

    at_steady_rate = pledge_fraud_evaluation(pledge=pledges[11])
    in_the_burst = pledge_fraud_evaluation(pledge=pledges[-1])

    assert not any("sigma" in r for r in at_steady_rate.reasons)
    assert any("sigma above its rate" in r for r in in_the_burst.reasons)
    assert in_the_burst.probability > at_steady_rate.probability


def test_the_task_checks_a_pledge_by_id_and_keeps_the_ip_for_later_checks(live_campaign):
    pledge = pledge_held(campaign=live_campaign)

    probability = tasks.check_pledge(pledge.pk, "198.51.100.4")

    check = PledgeRiskCheck.objects.get(pledge=pledge)
    assert (check.ip, check.probability) == ("198.51.100.4", probability)
    assert probability < 0.01


def test_one_card_used_by_several_accounts_is_reported(settings, live_campaign):
    settings.RISK_SHARED_PAYMENT_TOKENS = []
    for _ in range(2):
        pledge_held(campaign=LiveCampaignFactory(), token="tok_mastercard")
    third = pledge_held(campaign=live_campaign, token="tok_mastercard")

    evaluation = pledge_fraud_evaluation(pledge=third)

    assert evaluation.signals_json()["card_shared"]["value"] == 2
    assert "2 other backer accounts used this card." in evaluation.reasons

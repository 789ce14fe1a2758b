"""Fraud signals on pledges: card testing and self-backing raise alerts, ordinary pledging none."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import PaymentDeclined
from escrow.gateway import GatewayResult, PaymentGateway
from pledges.changes import pledge_change
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import new_key, pledge_held
from projects.models import CampaignStatus, CampaignStatusChange
from projects.tests.factories import LiveCampaignFactory
from risk import tasks
from risk.models import FraudAlert, PledgeRiskCheck
from risk.selectors import pledge_fraud_evaluation
from risk.services import risk_check_pledge, risk_check_recent_pledges

from .factories import pledge_history

pytestmark = pytest.mark.django_db

# Sandbox test cards of their own: each has a card fingerprint, unlike the public test tokens
# (tok_visa, ...) that every test shares and that therefore name no one's card.
INITIATORS_CARD = "tok_card_initiator"
ANOTHER_CARD = "tok_card_honest_backer"
SHARED_CARD = "tok_card_shared"


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


def test_an_initiator_backing_their_own_campaign_with_their_card_gets_it_suspended():
    initiator = UserFactory()
    own = LiveCampaignFactory(initiator=initiator)
    pledge_held(campaign=LiveCampaignFactory(), backer=initiator, token=INITIATORS_CARD)
    honest = pledge_held(campaign=own, token=ANOTHER_CARD)
    sock_puppet = pledge_held(campaign=own, token=INITIATORS_CARD)

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


def test_one_card_used_by_several_accounts_is_reported(live_campaign):
    for _ in range(2):
        pledge_held(campaign=LiveCampaignFactory(), token=SHARED_CARD)
    third = pledge_held(campaign=live_campaign, token=SHARED_CARD)

    evaluation = pledge_fraud_evaluation(pledge=third)

    assert evaluation.signals_json()["card_shared"]["value"] == 2
    assert "2 other backer accounts used this card." in evaluation.reasons


def test_the_public_test_tokens_name_no_card_so_their_signals_are_skipped(live_campaign):
    for _ in range(3):
        pledge_held(campaign=LiveCampaignFactory(), backer=live_campaign.initiator, token="tok_visa")
    pledge = pledge_held(campaign=live_campaign, token="tok_visa")

    signals = pledge_fraud_evaluation(pledge=pledge).signals_json()

    assert pledge.card_fingerprint == ""
    assert signals["card_shared"]["value"] is None
    assert signals["initiator_card"]["value"] is None


class OtherProcessor(PaymentGateway):
    """A second processor, not the sandbox: it keeps no records of its own (nothing for risk to
    read but what the platform recorded) and says which card it charged by a fingerprint of the
    token. A token starting with "declined" is declined."""

    def charge(self, *, idempotency_key: str, amount: int, currency: str, token: str) -> GatewayResult:
        card = "other_" + hashlib.sha256(token.encode()).hexdigest()[:16]
        if token.startswith("declined"):
            return GatewayResult(ok=False, code="do_not_honor", message="Declined.", card_fingerprint=card)
        return GatewayResult(ok=True, reference=f"other_{idempotency_key}", card_fingerprint=card)

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> GatewayResult:
        return GatewayResult(ok=True, reference=f"other_{idempotency_key}")

    def payout(self, *, idempotency_key: str, amount: int, currency: str, destination: str) -> GatewayResult:
        return GatewayResult(ok=True, reference=f"other_{idempotency_key}")

    def find_operation(self, *, idempotency_key: str) -> GatewayResult | None:
        return None


@pytest.fixture
def other_processor(settings):
    settings.PAYMENT_GATEWAY = f"{__name__}.OtherProcessor"


@pytest.mark.usefixtures("other_processor")
def test_card_signals_work_with_a_processor_that_is_not_the_sandbox():
    initiator = UserFactory()
    own = LiveCampaignFactory(initiator=initiator)
    pledge_held(campaign=LiveCampaignFactory(), backer=initiator, token="card-of-the-initiator")
    for _ in range(2):
        pledge_held(campaign=LiveCampaignFactory(), token="card-of-the-initiator")
    sock_puppet = pledge_held(campaign=own, token="card-of-the-initiator")

    check = risk_check_pledge(pledge=sock_puppet)

    assert check.signals["card_shared"]["value"] == 2
    alert = FraudAlert.objects.get()
    assert "The campaign's initiator has paid with this card." in alert.reasons
    assert alert.campaign_suspended


@pytest.mark.usefixtures("other_processor")
def test_card_testing_is_seen_in_declines_from_a_processor_that_is_not_the_sandbox(live_campaign):
    tester = UserFactory()
    for i in range(4):
        _declined(campaign=live_campaign, backer=tester, card=f"declined-card-{i}")
    working_card = pledge_held(campaign=live_campaign, backer=tester, token="stolen-card")

    risk_check_pledge(pledge=working_card)

    assert "4 declined cards in the hour before." in FraudAlert.objects.get().reasons


@pytest.mark.usefixtures("other_processor")
def test_the_card_the_processor_names_is_recorded_on_held_declined_and_changed_pledges(live_campaign):
    card = OtherProcessor().charge(idempotency_key="probe", amount=1, currency="USD", token="card-a").card_fingerprint
    held = pledge_held(campaign=live_campaign, token="card-a")
    # Another campaign: a backer holding a pledge here is refused before any charge (one pledge each).
    _declined(campaign=LiveCampaignFactory(), backer=held.backer, card="declined-card-a")

    changed = pledge_change(
        pledge=held, actor=held.backer, amount=held.amount + 1_000, payment_token="card-b", idempotency_key=new_key()
    )

    declined = Pledge.objects.get(backer=held.backer, status=PledgeStatus.FAILED)
    held.refresh_from_db()
    assert held.card_fingerprint == card
    assert declined.card_fingerprint.startswith("other_")
    assert changed.status == PledgeStatus.HELD
    assert changed.pk == held.pk  # the same pledge, its difference paid with card-b
    assert changed.changes.get().card_fingerprint not in ("", card)

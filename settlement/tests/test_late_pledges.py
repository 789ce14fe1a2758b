"""Late pledges: the initiator's offer before the deadline, and backers' pledges after success."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import FinanceFactory, UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, PaymentDeclined
from escrow.ledger import account_balances
from escrow.models import GatewayOperation
from escrow.vocabulary import campaign_escrow_code
from pledges.late_pledges import late_offer_close, late_offer_set
from pledges.models import Pledge, PledgeStatus
from pledges.services import pledge_cancel, pledge_refund
from pledges.tests.factories import pledge_held
from projects.models import Campaign, CampaignStatus, LatePledgeOffer, LatePledgeReward
from projects.tests.factories import RewardTierFactory
from settlement.verification import ledger_verify

from .late_helpers import LATE_PRICE, campaign_settle, campaign_with_late_offer, late_pledge, succeeded_with_late_offer

pytestmark = pytest.mark.django_db


def _offer_prices(campaign) -> dict:
    return dict(LatePledgeReward.objects.filter(offer__campaign=campaign).values_list("reward_id", "price"))


def test_the_initiator_opens_late_pledges_and_edits_them_before_the_deadline():
    campaign, reward = campaign_with_late_offer()
    other = RewardTierFactory(campaign=campaign, minimum_amount=5_000)

    late_offer_set(campaign=campaign, actor=campaign.initiator, prices={reward.pk: 2_500, other.pk: 6_000})

    assert _offer_prices(campaign) == {reward.pk: 2_500, other.pk: 6_000}  # the campaign price itself is fine
    actions = list(
        AuditEvent.objects.filter(object_id=str(campaign.pk)).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["late_offer_open", "late_offer_update"]


@pytest.mark.parametrize(
    ("prices", "code"),
    [
        ("below", "late_price_below_campaign_price"),
        ("zero", "amount_not_positive"),
        ("huge", "amount_too_large"),
        ("none", "rewards_required"),
        ("foreign", "invalid_reward"),
    ],
)
def test_a_bad_offer_is_refused_and_changes_nothing(prices, code):
    campaign, reward = campaign_with_late_offer()
    foreign = RewardTierFactory()
    asked = {
        "below": {reward.pk: 2_499},
        "zero": {reward.pk: 0},
        "huge": {reward.pk: 10**15},
        "none": {},
        "foreign": {foreign.pk: 3_000},
    }[prices]
    with pytest.raises(InvalidInput) as refused:
        late_offer_set(campaign=campaign, actor=campaign.initiator, prices=asked)
    assert refused.value.code == code
    assert _offer_prices(campaign) == {reward.pk: LATE_PRICE}
    assert AuditEvent.objects.filter(object_id=str(campaign.pk)).count() == 1


def test_only_the_initiator_sets_up_late_pledges():
    campaign, reward = campaign_with_late_offer()
    with pytest.raises(NotAllowed):
        late_offer_set(campaign=campaign, actor=UserFactory(), prices={reward.pk: 9_000})
    with pytest.raises(NotAllowed):
        late_offer_close(campaign=campaign, actor=UserFactory())
    assert _offer_prices(campaign) == {reward.pk: LATE_PRICE}
    assert LatePledgeOffer.objects.get(campaign=campaign).is_open


def test_opening_or_editing_after_the_deadline_is_refused():
    campaign, reward = campaign_with_late_offer()
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict) as refused:
        late_offer_set(campaign=campaign, actor=campaign.initiator, prices={reward.pk: 9_000})
    assert refused.value.code == "campaign_not_live"
    assert _offer_prices(campaign) == {reward.pk: LATE_PRICE}


def test_closing_is_final_and_audited():
    campaign, reward = campaign_with_late_offer()
    late_offer_close(campaign=campaign, actor=campaign.initiator)
    with pytest.raises(Conflict) as reopened:
        late_offer_set(campaign=campaign, actor=campaign.initiator, prices={reward.pk: 4_000})
    assert reopened.value.code == "late_pledges_closed"
    with pytest.raises(Conflict):
        late_offer_close(campaign=campaign, actor=campaign.initiator)
    offer = LatePledgeOffer.objects.get(campaign=campaign)
    assert not offer.is_open
    assert offer.closed_by == campaign.initiator
    assert _offer_prices(campaign) == {reward.pk: LATE_PRICE}
    assert AuditEvent.objects.filter(object_id=str(campaign.pk), action="late_offer_close").count() == 1


def test_a_backer_pledges_late_after_success_charged_at_once_and_held(celery_eager, django_capture_on_commit_callbacks):
    campaign, reward = succeeded_with_late_offer(quantity_limit=10)
    raised, backers = campaign.pledged_amount, campaign.backer_count
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        pledge = late_pledge(campaign=campaign, reward=reward, amount=3_500)

    assert pledge.status == PledgeStatus.HELD
    assert pledge.is_late
    charge = GatewayOperation.objects.get(idempotency_key=f"charge:pledge:{pledge.pk}")
    assert charge.amount == 3_500
    escrow = account_balances(codes=[campaign_escrow_code(campaign.pk)])[(campaign_escrow_code(campaign.pk), "USD")]
    assert escrow == 3_500
    reward.refresh_from_db()
    assert reward.claimed_count == 1
    campaign.refresh_from_db()
    assert (campaign.pledged_amount, campaign.backer_count) == (raised, backers)  # the total at the deadline stays
    assert [m.subject for m in mail.outbox] == [f"Your late pledge to {campaign.title}"]
    assert "late pledge" in mail.outbox[0].body
    assert ledger_verify() == []


def test_a_retry_with_the_same_key_charges_once():
    campaign, reward = succeeded_with_late_offer()
    backer = UserFactory()
    first = late_pledge(campaign=campaign, reward=reward, backer=backer, key="late-1")
    again = late_pledge(campaign=campaign, reward=reward, backer=backer, key="late-1")
    assert again.pk == first.pk
    assert GatewayOperation.objects.filter(idempotency_key=f"charge:pledge:{first.pk}").count() == 1
    with pytest.raises(Conflict) as reused:
        late_pledge(campaign=campaign, reward=reward, backer=backer, key="late-1", amount=4_000)
    assert reused.value.code == "idempotency_key_reused"


def test_a_backer_of_the_campaign_cannot_add_a_late_pledge():
    campaign, reward = campaign_with_late_offer()
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer, amount=campaign.goal)
    campaign = campaign_settle(campaign, raised=1_000)
    assert Pledge.objects.get(backer=backer).status == PledgeStatus.RELEASED
    with pytest.raises(Conflict) as refused:
        late_pledge(campaign=campaign, reward=reward, backer=backer)
    assert refused.value.code == "already_backing"
    late = late_pledge(campaign=campaign, reward=reward)
    with pytest.raises(Conflict):
        late_pledge(campaign=campaign, reward=reward, backer=late.backer)  # nor a second late one
    assert Pledge.objects.filter(is_late=True).count() == 1


@pytest.mark.parametrize(
    ("amount", "code"),
    [(2_999, "below_reward_minimum"), (0, "amount_not_positive"), (10**15, "amount_too_large")],
)
def test_a_late_pledge_out_of_range_is_refused_and_charges_nothing(amount, code):
    campaign, reward = succeeded_with_late_offer()
    with pytest.raises(InvalidInput) as refused:
        late_pledge(campaign=campaign, reward=reward, amount=amount)
    assert refused.value.code == code
    assert not Pledge.objects.filter(is_late=True).exists()
    reward.refresh_from_db()
    assert reward.claimed_count == 0


def test_a_reward_not_offered_late_is_refused():
    campaign, _reward = campaign_with_late_offer()
    other = RewardTierFactory(campaign=campaign, minimum_amount=1_000)
    campaign = campaign_settle(campaign)
    with pytest.raises(InvalidInput) as refused:
        late_pledge(campaign=campaign, reward=other, amount=5_000)
    assert refused.value.code == "reward_not_offered_late"


def test_no_late_pledges_before_success_on_a_failed_campaign_or_once_closed():
    campaign, reward = campaign_with_late_offer()
    with pytest.raises(Conflict) as live:
        late_pledge(campaign=campaign, reward=reward)
    assert live.value.code == "late_pledges_not_open"

    failed, failed_reward = campaign_with_late_offer(goal=1_000_000)
    failed = campaign_settle(failed, raised=1_000)
    assert failed.status == CampaignStatus.FAILED
    with pytest.raises(Conflict):
        late_pledge(campaign=failed, reward=failed_reward)

    succeeded, late_reward = succeeded_with_late_offer()
    late_offer_close(campaign=succeeded, actor=succeeded.initiator)
    with pytest.raises(Conflict):
        late_pledge(campaign=succeeded, reward=late_reward)
    assert not Pledge.objects.filter(is_late=True).exists()


def test_a_sold_out_late_reward_is_refused():
    campaign, reward = succeeded_with_late_offer(quantity_limit=1)
    late_pledge(campaign=campaign, reward=reward)
    with pytest.raises(Conflict) as refused:
        late_pledge(campaign=campaign, reward=reward)
    assert refused.value.code == "sold_out"


def test_a_declined_card_frees_the_slot():
    campaign, reward = succeeded_with_late_offer(quantity_limit=1)
    with pytest.raises(PaymentDeclined):
        late_pledge(campaign=campaign, reward=reward, token="tok_chargeDeclined")
    reward.refresh_from_db()
    assert reward.claimed_count == 0
    assert late_pledge(campaign=campaign, reward=reward).status == PledgeStatus.HELD


def test_staff_refund_a_late_pledge_before_its_batch_but_the_backer_cannot_cancel_it():
    campaign, reward = succeeded_with_late_offer(quantity_limit=1)
    pledge = late_pledge(campaign=campaign, reward=reward)
    with pytest.raises(Conflict) as refused:
        pledge_cancel(pledge=pledge, actor=pledge.backer)
    assert refused.value.code == "late_pledge_not_cancellable"
    backers = Campaign.objects.get(pk=campaign.pk).backer_count

    pledge_refund(pledge=pledge, actor=FinanceFactory(), reason="Asked by the backer")

    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.REFUNDED
    charge = GatewayOperation.objects.get(idempotency_key=f"charge:pledge:{pledge.pk}")
    assert charge.refunded_amount == LATE_PRICE
    reward.refresh_from_db()
    assert reward.claimed_count == 0
    assert Campaign.objects.get(pk=campaign.pk).backer_count == backers
    assert ledger_verify() == []


@pytest.mark.parametrize(("field", "value"), [("funding_model", "debt"), ("has_milestone_plan", True)])
def test_late_pledges_are_not_offered_on_a_loan_or_a_campaign_with_milestones(field, value):
    reward = RewardTierFactory(campaign__status="live", campaign__deadline=timezone.now() + timedelta(days=3))
    Campaign.objects.filter(pk=reward.campaign_id).update(**{field: value})
    campaign = Campaign.objects.get(pk=reward.campaign_id)
    with pytest.raises(Conflict) as refused:
        late_offer_set(campaign=campaign, actor=campaign.initiator, prices={reward.pk: 9_000})
    assert refused.value.code == "late_pledges_not_offered"
    assert not LatePledgeOffer.objects.filter(campaign=campaign).exists()

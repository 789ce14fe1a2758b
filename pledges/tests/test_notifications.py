"""E-mails sent by Celery tasks after commit: receipts, reviews, outcomes, refunds, updates."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.services import pledge_cancel
from pledges.tests.factories import pledge_held, pledge_held_again
from projects.models import CampaignStatus
from projects.services import campaign_approve, campaign_reject, campaign_request_changes
from projects.tests.factories import CampaignFactory, LiveCampaignFactory, RewardTierFactory
from settlement.services import campaigns_close_due


@pytest.fixture
def outbox(celery_eager, django_capture_on_commit_callbacks):
    """Run tasks enqueued on commit at once, and collect what they send."""
    mail.outbox.clear()
    return mail.outbox


@pytest.mark.django_db
def test_pledge_receipt_is_sent_once_after_commit(live_campaign, django_capture_on_commit_callbacks, outbox):
    backer = UserFactory(email="ada@example.com", display_name="Ada")
    reward = RewardTierFactory(campaign=live_campaign, title="Sticker & pin", minimum_amount=1_000)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_500, reward=reward)
    assert len(callbacks) == 1
    assert len(outbox) == 1
    message = outbox[0]
    assert message.to == ["ada@example.com"]
    assert live_campaign.title in message.subject
    assert "Hello Ada," in message.body
    assert "$25.00" in message.body
    assert "Sticker & pin" in message.body
    assert f"/pledges/{pledge.pk}/" in message.body
    assert "refunded in full" in message.body


@pytest.mark.django_db
def test_declined_pledge_sends_no_receipt(live_campaign, django_capture_on_commit_callbacks, outbox):
    from crowdfund_site.exceptions import PaymentDeclined

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PaymentDeclined):
        pledge_held(campaign=live_campaign, token="tok_chargeDeclined")
    assert outbox == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("review", "subject"),
    [
        (lambda c, r: campaign_approve(campaign=c, reviewer=r), "is approved"),
        (lambda c, r: campaign_request_changes(campaign=c, reviewer=r, reason="Add a photo"), "Changes requested"),
        (lambda c, r: campaign_reject(campaign=c, reviewer=r, reason="Not allowed here"), "was not approved"),
    ],
)
def test_initiator_hears_the_review_decision(staff, django_capture_on_commit_callbacks, outbox, review, subject):
    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW)
    with django_capture_on_commit_callbacks(execute=True):
        review(campaign, staff)
    assert len(outbox) == 1
    assert outbox[0].to == [campaign.initiator.email]
    assert subject in outbox[0].subject


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pledged", "initiator_subject", "backer_text"),
    [
        (60_000, "is funded!", "has been released to the initiator"),
        (10_000, "did not reach its goal", "has been refunded in full"),
    ],
)
def test_initiator_and_backers_hear_how_the_campaign_ended(
    django_capture_on_commit_callbacks, outbox, pledged, initiator_subject, backer_text
):
    campaign = LiveCampaignFactory(goal=100_000)
    ada, bob = UserFactory(email="ada@example.com"), UserFactory(email="bob@example.com")
    pledge_held(campaign=campaign, backer=ada, amount=pledged)
    pledge_held_again(campaign=campaign, backer=ada, amount=pledged // 2)
    pledge_held(campaign=campaign, backer=bob, amount=pledged // 2)
    campaign.deadline = timezone.now() - timedelta(seconds=1)
    campaign.save(update_fields=["deadline"])
    outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        campaigns_close_due()
    by_recipient = {message.to[0]: message for message in outbox}
    assert set(by_recipient) == {campaign.initiator.email, "ada@example.com", "bob@example.com"}
    assert initiator_subject in by_recipient[campaign.initiator.email].subject
    ada_mail = by_recipient["ada@example.com"].body
    assert backer_text in ada_mail
    assert f"${pledged * 3 // 2 // 100:,}.00" in ada_mail  # one message with both of Ada's pledges


@pytest.mark.django_db
def test_backer_hears_of_their_refund(live_campaign, backer, django_capture_on_commit_callbacks, outbox):
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=4_200)
    outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        pledge_cancel(pledge=pledge, actor=backer)
    assert len(outbox) == 1
    assert "Refund" in outbox[0].subject
    assert "$42.00" in outbox[0].body


@pytest.mark.django_db
def test_cancelled_campaign_tells_backers_they_are_refunded(django_capture_on_commit_callbacks, outbox):
    from settlement.services import campaign_cancel

    campaign = LiveCampaignFactory()
    backer = UserFactory(email="cy@example.com")
    pledge_held(campaign=campaign, backer=backer, amount=3_000)
    outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        campaign_cancel(campaign=campaign, actor=campaign.initiator)
    assert [m.to for m in outbox] == [["cy@example.com"]]
    assert "was cancelled" in outbox[0].subject
    assert "$30.00" in outbox[0].body

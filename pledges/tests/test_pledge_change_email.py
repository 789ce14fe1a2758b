"""The backer gets one e-mail per change of their pledge, after commit; a refused change sends none."""

import pytest
from django.core import mail

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, PaymentDeclined
from pledges.changes import UNCHANGED, pledge_change
from pledges.tests.factories import new_key, pledge_held
from projects.tests.factories import RewardTierFactory

pytestmark = pytest.mark.django_db

VISA = "tok_visa"


@pytest.fixture
def outbox(celery_eager):
    mail.outbox.clear()
    return mail.outbox


def change(pledge, amount=None, *, reward=UNCHANGED, token=VISA):
    return pledge_change(
        pledge=pledge, actor=pledge.backer, amount=amount, reward=reward, payment_token=token, idempotency_key=new_key()
    )


def test_a_raise_sends_one_email_with_the_charge(live_campaign, django_capture_on_commit_callbacks, outbox):
    backer = UserFactory(email="ada@example.com", display_name="Ada")
    small = RewardTierFactory(campaign=live_campaign, title="Sticker", minimum_amount=1_000)
    big = RewardTierFactory(campaign=live_campaign, title="Signed book", minimum_amount=4_000)
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=2_000, reward=small)
    with django_capture_on_commit_callbacks(execute=True):
        change(pledge, 5_000, reward=big)
    assert len(outbox) == 1
    message = outbox[0]
    assert message.to == ["ada@example.com"]
    assert live_campaign.title in message.subject
    assert "Amount: $20.00 → $50.00" in message.body
    assert "Reward: Sticker → Signed book" in message.body
    assert "We charged the difference of $30.00 to your card." in message.body
    assert "refunded" not in message.body
    assert message.body.rstrip().endswith("/pledges/")


def test_a_lowering_sends_one_email_with_the_refund_in_chinese(
    live_campaign, django_capture_on_commit_callbacks, outbox
):
    backer = UserFactory(email="li@example.com", preferred_language="zh-hans")
    reward = RewardTierFactory(campaign=live_campaign, title="Poster", minimum_amount=1_000)
    pledge = pledge_held(campaign=live_campaign, backer=backer, amount=5_000, reward=reward)
    with django_capture_on_commit_callbacks(execute=True):
        change(pledge, 1_500, reward=None)
    assert len(outbox) == 1
    body = outbox[0].body
    assert "金额：$50.00 → $15.00" in body
    assert "回报：Poster → 不选回报" in body
    assert "我们正在将差额 $35.00 退还" in body
    assert "我的支持：" in body


def test_a_refused_or_declined_change_sends_nothing(live_campaign, django_capture_on_commit_callbacks, outbox):
    reward = RewardTierFactory(campaign=live_campaign, minimum_amount=1_000, quantity_limit=1)
    pledge_held(campaign=live_campaign, amount=1_000, reward=reward)  # takes the only slot
    pledge = pledge_held(campaign=live_campaign, amount=2_000)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(Conflict):
            change(pledge, reward=reward)
        with pytest.raises(PaymentDeclined):
            change(pledge, 3_000, token="tok_chargeDeclined")
    assert outbox == []
    pledge.refresh_from_db()
    assert pledge.amount == 2_000

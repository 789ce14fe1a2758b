"""Pledges made the way a backer makes them: through ``pledge_create`` and the sandbox gateway.

A held pledge cannot be a plain model factory: it needs a charge at the gateway, a hold in the
ledger and updated campaign totals, and only the service writes all of those together.
"""

import uuid

from accounts.tests.factories import UserFactory
from pledges.models import OPEN_STATUSES, Pledge, PledgeStatus
from pledges.services import _fingerprint, pledge_create

VISA = "tok_visa"  # the sandbox's card that always works


def new_key() -> str:
    return f"test-{uuid.uuid4()}"


def pledge_held(*, campaign, backer=None, amount: int = 5_000, reward=None, token: str = VISA) -> Pledge:
    """Return a pledge held in ``campaign``'s escrow, made through ``pledge_create``."""
    return pledge_create(
        backer=backer or UserFactory(),
        campaign=campaign,
        amount=amount,
        currency=campaign.currency,
        payment_token=token,
        idempotency_key=new_key(),
        reward=reward,
    )


def pledge_held_again(*, campaign, backer, amount: int = 5_000, reward=None) -> Pledge:
    """Return a second held pledge of ``backer`` on ``campaign``, as data from before one open pledge per backer.

    The backer's open pledges there are flagged ``legacy_duplicate`` (as migration 0005 flags the extra
    ones), so the new one, made through ``pledge_create``, is the one the backer manages.
    """
    Pledge.objects.filter(backer=backer, campaign=campaign, status__in=OPEN_STATUSES).update(legacy_duplicate=True)
    return pledge_held(campaign=campaign, backer=backer, amount=amount, reward=reward)


def pledge_left_pending(
    *, campaign, backer=None, amount: int = 5_000, reward=None, token: str = VISA, created_at=None
) -> Pledge:
    """Return a pending pledge as a crash right after reserving it leaves it (slot claimed, no charge).

    Retrying the same request (same backer, key, amount, reward and token) finds this pledge.
    """
    fields = {"created_at": created_at} if created_at else {}
    if reward is not None:
        reward.claimed_count += 1
        reward.save(update_fields=["claimed_count"])
    return Pledge.objects.create(
        backer=backer or UserFactory(),
        campaign=campaign,
        reward=reward,
        amount=amount,
        currency=campaign.currency,
        status=PledgeStatus.PENDING,
        idempotency_key=new_key(),
        request_fingerprint=_fingerprint(
            campaign_id=campaign.pk,
            reward_id=reward.pk if reward else None,
            amount=amount,
            currency=campaign.currency,
            token=token,
        ),
        **fields,
    )

"""Test data for the risk models: pledge histories with chosen times, and closed campaigns.

The risk models only read pledges, so a history of hundreds of pledges at chosen moments is
written directly (the way ``pledges.testing`` does for settlement) rather than through the
payment gateway, which would stamp them all with the current time.
"""

import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from accounts.models import User
from pledges.models import Pledge, PledgeStatus
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory


def backers_create(count: int, *, joined: datetime | None = None) -> list[User]:
    """Create ``count`` backers, who joined at ``joined`` (default: now)."""
    prefix = uuid.uuid4().hex[:8]
    joined = joined or timezone.now()
    return User.objects.bulk_create(
        User(username=f"risk-{prefix}-{i}", email=f"risk-{prefix}-{i}@example.com", password="!", date_joined=joined)
        for i in range(count)
    )


def pledge_history(
    campaign, *, times: list[datetime], amounts: list[int], backers: list[User] | None = None
) -> list[Pledge]:
    """Create held pledges on ``campaign`` made at ``times``, one new backer each unless given."""
    backers = backers or backers_create(len(times))
    return Pledge.objects.bulk_create(
        Pledge(
            backer=backers[i % len(backers)],
            campaign=campaign,
            amount=amount,
            currency=campaign.currency,
            status=PledgeStatus.HELD,
            idempotency_key=f"history-{uuid.uuid4()}",
            request_fingerprint="history",
            created_at=at,
            held_at=at,
        )
        for i, (at, amount) in enumerate(zip(times, amounts, strict=True))
    )


def closed_campaign_create(*, failed: bool, days_ago: int = 60, **fields):
    """Return a campaign that ran 30 days and closed ``days_ago`` days ago, succeeded or failed."""
    deadline = timezone.now() - timedelta(days=days_ago)
    launched = deadline - timedelta(days=30)
    return CampaignFactory(
        status=CampaignStatus.FAILED if failed else CampaignStatus.SUCCEEDED,
        submitted_at=launched - timedelta(days=3),
        launched_at=launched,
        deadline=deadline,
        **fields,
    )

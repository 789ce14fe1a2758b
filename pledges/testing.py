"""Many held pledges at once, exactly as ``pledge_create`` leaves them, for tests and benchmarks.

Going through ``pledge_create`` costs a dozen round trips per pledge; settlement tests and the
settlement benchmark need thousands to hundreds of thousands. ``held_pledges_create_bulk``
writes the same rows with a few bulk statements per chunk:

- one new backer per pledge (or ``backers`` new backers shared round-robin), password unusable;
- a succeeded sandbox charge keyed ``charge:pledge:<id>``, named by the pledge's payment reference;
- the held pledge and its pending -> held status change;
- the hold posting (backer funding -> campaign escrow) keyed ``hold:pledge:<id>``;
- the campaign's ``pledged_amount`` and ``backer_count``.

Afterwards ``ledger_verify()`` passes, and settlement cannot tell these pledges from real ones.
Nothing on a request path uses this module.
"""

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import transaction
from django.db.models import CharField, F, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from escrow.accounts import backer_funding_code, campaign_escrow_code, pledge_reference
from escrow.ledger import Posting, ledger_accounts_get_or_create, ledger_post_many
from escrow.models import AccountKind, GatewayOperation, OperationKind, OperationStatus, TransactionKind
from projects.models import Campaign

from .models import Pledge, PledgeStatus, PledgeStatusChange
from .services import _fingerprint, charge_key, hold_key

SANDBOX_TOKEN = "tok_visa"  # noqa: S105 - a public sandbox test token, not a secret


def default_amount(index: int) -> int:
    """Return 10.00 to 59.00 in whole units, varying by pledge, so sums are not trivial."""
    return 1_000 + (index % 50) * 100


def held_pledges_create_bulk(
    *,
    campaign: Campaign,
    count: int,
    amount: Callable[[int], int] = default_amount,
    backers: int | None = None,
    chunk_size: int = 5_000,
) -> int:
    """Create ``count`` held pledges on ``campaign`` with their charges and holds; return their total.

    ``amount(i)`` gives the i-th pledge's amount in minor units. Each chunk is one transaction.
    The campaign is expected to be live (or about to close); its status is not checked.
    """
    backers = min(backers or count, count)
    user_model = get_user_model()
    prefix = f"bulk-{campaign.pk}-{timezone.now().timestamp():.6f}"
    users = []
    for start in range(0, backers, chunk_size):
        with transaction.atomic():
            users += user_model.objects.bulk_create(
                user_model(
                    username=f"{prefix}-{i}", email=f"{prefix}-{i}@example.com", password=UNUSABLE_PASSWORD_PREFIX
                )
                for i in range(start, min(start + chunk_size, backers))
            )
    backer_ids = [u.pk for u in users]
    total = 0
    for start in range(0, count, chunk_size):
        indexes = range(start, min(start + chunk_size, count))
        with transaction.atomic():
            total += _create_chunk(campaign=campaign, indexes=indexes, amount=amount, backer_ids=backer_ids)
    Campaign.objects.filter(pk=campaign.pk).update(
        pledged_amount=F("pledged_amount") + total, backer_count=F("backer_count") + backers
    )
    return total


def _create_chunk(*, campaign: Campaign, indexes: range, amount: Callable[[int], int], backer_ids: list[int]) -> int:
    now = timezone.now()
    pledges = Pledge.objects.bulk_create(
        Pledge(
            backer_id=backer_ids[i % len(backer_ids)],
            campaign_id=campaign.pk,
            amount=amount(i),
            currency=campaign.currency,
            status=PledgeStatus.HELD,
            idempotency_key=f"bulk-pledge-{i}",
            request_fingerprint=_fingerprint(
                campaign_id=campaign.pk,
                reward_id=None,
                amount=amount(i),
                currency=campaign.currency,
                token=SANDBOX_TOKEN,
            ),
            created_at=now,
            held_at=now,
        )
        for i in indexes
    )
    GatewayOperation.objects.bulk_create(
        GatewayOperation(
            kind=OperationKind.CHARGE,
            idempotency_key=charge_key(p.pk),
            status=OperationStatus.SUCCEEDED,
            amount=p.amount,
            currency=p.currency,
            token=SANDBOX_TOKEN,
        )
        for p in pledges
    )
    # The charge's key is derived from the pledge id, so the reference can only be filled in now.
    charge_id = GatewayOperation.objects.filter(
        idempotency_key=Concat(Value("charge:pledge:"), Cast(OuterRef("pk"), CharField()))
    ).values("pk")[:1]
    Pledge.objects.filter(pk__in=[p.pk for p in pledges]).update(
        payment_reference=Concat(Value("ch_"), Cast(Subquery(charge_id), CharField()))
    )
    PledgeStatusChange.objects.bulk_create(
        PledgeStatusChange(
            pledge_id=p.pk, from_status=PledgeStatus.PENDING, to_status=PledgeStatus.HELD, created_at=now
        )
        for p in pledges
    )
    escrow_code = campaign_escrow_code(campaign.pk)
    accounts = ledger_accounts_get_or_create(
        specs=[(escrow_code, AccountKind.ESCROW)]
        + [(backer_funding_code(p.backer_id), AccountKind.FUNDING_SOURCE) for p in pledges],
        currency=campaign.currency,
    )
    ledger_post_many(
        postings=[
            Posting(
                kind=TransactionKind.HOLD,
                idempotency_key=hold_key(p.pk),
                reference=pledge_reference(p.pk),
                currency=p.currency,
                legs=[(accounts[backer_funding_code(p.backer_id)], -p.amount), (accounts[escrow_code], p.amount)],
            )
            for p in pledges
        ]
    )
    return sum(p.amount for p in pledges)

"""Many held pledges at once, exactly as ``pledge_create`` leaves them, for tests and benchmarks.

Going through ``pledge_create`` costs a dozen round trips per pledge; settlement tests and the
settlement benchmark need thousands to hundreds of thousands. ``held_pledges_create_bulk``
writes the same rows with a few bulk statements per chunk:

- one new backer per pledge (or ``backers`` new backers shared round-robin, their second and later
  pledges flagged ``legacy_duplicate`` as data from before "one open pledge per backer" is), password unusable;
- a succeeded sandbox charge keyed ``charge:pledge:<id>``, named by the pledge's payment reference;
- the held pledge and its pending -> held status change;
- the hold posting (backer funding -> campaign escrow) keyed ``hold:pledge:<id>``;
- the campaign's ``pledged_amount`` and ``backer_count``.

Afterwards ``ledger_verify()`` passes, and settlement cannot tell these pledges from real ones.
Nothing on a request path uses this module.
"""

from collections.abc import Callable
from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import transaction
from django.db.models import CharField, F, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from crowdfund_site.bulk import AnyOf, insert_rows
from escrow.ledger import ledger_accounts_get_or_create, ledger_post_many
from escrow.models import GatewayOperation, OperationKind, OperationStatus
from escrow.vocabulary import charge_key, charge_key_expression, hold_account_specs, hold_posting
from projects.models import Campaign

from .models import Pledge, PledgeStatus, PledgeStatusChange
from .services import _fingerprint

TOKEN = "tok_visa"  # noqa: S105 - a public sandbox test token, not a secret
PLEDGE_COLUMNS = ["backer", "campaign", "amount", "currency", "status", "idempotency_key", "request_fingerprint"]


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
    now, currency = timezone.now(), campaign.currency
    rows = [(backer_ids[i % len(backer_ids)], amount(i), i) for i in indexes]
    fingerprint = partial(_fingerprint, campaign_id=campaign.pk, reward_id=None, currency=currency, token=TOKEN)
    pledge_ids = insert_rows(
        model=Pledge,
        fields=[*PLEDGE_COLUMNS, "created_at", "held_at", "legacy_duplicate"],
        rows=[
            (
                *(backer, campaign.pk, value, currency, PledgeStatus.HELD, f"bulk-{i}", fingerprint(amount=value)),
                *(now, now, i >= len(backer_ids)),
            )
            for backer, value, i in rows
        ],
        returning_ids=True,
    )
    insert_rows(
        model=GatewayOperation,
        fields=["kind", "idempotency_key", "status", "amount", "currency", "token", "created_at", "updated_at"],
        rows=[
            (OperationKind.CHARGE, charge_key(pledge_id), OperationStatus.SUCCEEDED, value, currency, TOKEN, now, now)
            for pledge_id, (_, value, _) in zip(pledge_ids, rows, strict=True)
        ],
    )
    # The charge's key is derived from the pledge id, so the reference can only be filled in now.
    charge_id = GatewayOperation.objects.filter(idempotency_key=charge_key_expression(OuterRef("pk"))).values("pk")[:1]
    Pledge.objects.filter(AnyOf(F("pk"), pledge_ids)).update(
        payment_reference=Concat(Value("ch_"), Cast(Subquery(charge_id), CharField()))
    )
    insert_rows(
        model=PledgeStatusChange,
        fields=["pledge", "from_status", "to_status", "created_at"],
        rows=[(pledge_id, PledgeStatus.PENDING, PledgeStatus.HELD, now) for pledge_id in pledge_ids],
    )
    specs = {
        spec for backer_id, _, _ in rows for spec in hold_account_specs(backer_id=backer_id, campaign_id=campaign.pk)
    }
    accounts = ledger_accounts_get_or_create(specs=sorted(specs), currency=currency)
    ledger_post_many(
        postings=[
            hold_posting(
                pledge_id=pledge_id,
                backer_id=backer_id,
                campaign_id=campaign.pk,
                amount=value,
                currency=currency,
                accounts=accounts,
            )
            for pledge_id, (backer_id, value, _) in zip(pledge_ids, rows, strict=True)
        ]
    )
    return sum(value for _, value, _ in rows)

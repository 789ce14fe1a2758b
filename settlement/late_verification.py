"""The invariants of late pledges and their weekly release, for ``verification.ledger_verify``.

- each late pledge's hold put exactly its amount into escrow, and nothing changed it since;
- each late pledge was held while its campaign's offer was open (never after closing), on a
  succeeded campaign, for a reward of the offer and at least its late price;
- each batch released the sum of its pledges (each released once, by it alone: no late pledge
  is in two batches, every released late pledge is in one, every pledge in one is released and
  was held before the batch's week ended), took the fee the campaign's rate gives on that sum,
  and paid out the rest once it says paid, nothing before;
- a settled campaign keeps in escrow only its held late pledges and in its payable only what
  its unfinished batches released and have not paid out (``settled_money_expected``).
"""

from collections import defaultdict

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum

from escrow.models import AccountKind, LedgerEntry, TransactionKind
from escrow.vocabulary import pledge_reference_expression
from escrow.vocabulary_late import LATE_BATCH_REFERENCE_PREFIX, batch_id_from_late_reference
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus, LatePledgeReward

from .models import LateReleaseBatch, LateReleaseItem, LateReleaseStatus
from .tranches import fee_split

SHOW = 10


def _ids(rows) -> str:
    rows = list(rows[: SHOW + 1])
    return ", ".join(str(r) for r in rows[:SHOW]) + (", ..." if len(rows) > SHOW else "")


def settled_money_expected() -> tuple[dict[int, int], dict[int, int]]:
    """Return (escrow, payable) a settled campaign may still hold because of late pledges, by campaign."""
    escrow = defaultdict(int)
    for campaign_id, total in (
        Pledge.objects.filter(is_late=True, status=PledgeStatus.HELD)
        .values_list("campaign_id")
        .annotate(total=Sum("amount"))
    ):
        escrow[campaign_id] = total
    payable = defaultdict(int)
    for campaign_id, status, amount, net in LateReleaseBatch.objects.exclude(status=LateReleaseStatus.PAID).values_list(
        "campaign_id", "status", "amount", "net"
    ):
        payable[campaign_id] += amount if status == LateReleaseStatus.COLLECTING else net
    return escrow, payable


def late_verify() -> list[str]:
    """Return every broken invariant of late pledges as a sentence naming the offending rows."""
    return _check_late_pledges() + _check_batches()


def _check_late_pledges() -> list[str]:
    problems = []
    late = Pledge.objects.filter(is_late=True)
    hold_in_escrow = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.ESCROW,
            transaction__kind=TransactionKind.HOLD,
            transaction__reference=pledge_reference_expression(OuterRef("pk")),
        )
        .values("transaction__reference")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    charged = [PledgeStatus.HELD, PledgeStatus.RELEASED, PledgeStatus.REFUNDED]
    wrong_hold = (
        late.filter(status__in=charged)
        .annotate(held=Subquery(hold_in_escrow[:1]))
        .filter(Q(held__isnull=True) | ~Q(held=F("amount")))
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    if wrong_hold.exists():
        problems.append(f"Late pledges whose hold did not put exactly their amount in escrow: {_ids(wrong_hold)}")
    changed = late.filter(changes__isnull=False).values_list("pk", flat=True).distinct().order_by("pk")
    if changed.exists():
        problems.append(f"Late pledges changed after they were made: {_ids(changed)}")
    after_close = (
        late.filter(held_at__isnull=False, campaign__late_offer__closed_at__lt=F("held_at"))
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    if after_close.exists():
        problems.append(f"Late pledges held after their campaign closed late pledges: {_ids(after_close)}")
    outside = (
        late.filter(held_at__isnull=False)
        .filter(Q(campaign__late_offer__isnull=True) | ~Q(campaign__status=CampaignStatus.SUCCEEDED))
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    if outside.exists():
        problems.append(f"Late pledges held without an offer of a succeeded campaign: {_ids(outside)}")
    price = LatePledgeReward.objects.filter(offer__campaign_id=OuterRef("campaign_id"), reward_id=OuterRef("reward_id"))
    under_price = (
        late.filter(held_at__isnull=False)
        .annotate(late_price=Subquery(price.values("price")[:1]))
        .filter(Q(late_price__isnull=True) | Q(late_price__gt=F("amount") - F("shipping_amount")))
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    if under_price.exists():
        problems.append(f"Late pledges for a reward not offered late, or below its late price: {_ids(under_price)}")
    return problems


def _check_batches() -> list[str]:
    problems = []
    twice = (
        LateReleaseItem.objects.values("pledge_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("pledge_id", flat=True)
    )
    if twice.exists():
        problems.append(f"Late pledges in more than one weekly batch: {_ids(twice)}")
    not_late = LateReleaseItem.objects.filter(
        Q(pledge__is_late=False)
        | ~Q(pledge__status=PledgeStatus.RELEASED)
        | ~Q(amount=F("pledge__amount"))
        | ~Q(pledge__campaign_id=F("batch__campaign_id"))
        | Q(pledge__held_at__gte=F("batch__period_end"))
    ).values_list("pledge_id", flat=True)
    if not_late.exists():
        problems.append(
            "Weekly batch items that are not a released late pledge of the campaign held before the week ended,"
            f" for its amount: {_ids(not_late)}"
        )
    unbatched = (
        Pledge.objects.filter(is_late=True, status=PledgeStatus.RELEASED, late_release_item__isnull=True)
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    if unbatched.exists():
        problems.append(f"Late pledges released outside a weekly batch: {_ids(unbatched)}")
    # What the ledger released per batch: the release postings of its items' pledges.
    released = defaultdict(int)
    for batch_id, total in (
        LateReleaseItem.objects.values_list("batch_id")
        .annotate(
            total=Subquery(
                LedgerEntry.objects.filter(
                    account__kind=AccountKind.ESCROW,
                    transaction__kind=TransactionKind.RELEASE,
                    transaction__reference=pledge_reference_expression(OuterRef("pledge_id")),
                )
                .values("transaction__reference")
                .annotate(t=Sum("amount"))
                .values("t")[:1]
            )
        )
        .values_list("batch_id", "total")
    ):
        released[batch_id] += -(total or 0)
    item_totals = dict(LateReleaseItem.objects.values_list("batch_id").annotate(t=Sum("amount")))
    posted = defaultdict(lambda: defaultdict(int))
    for reference, kind, total in (
        LedgerEntry.objects.filter(
            transaction__reference__startswith=LATE_BATCH_REFERENCE_PREFIX,
            transaction__kind__in=[TransactionKind.FEE, TransactionKind.PAYOUT],
            amount__gt=0,
        )
        .values_list("transaction__reference", "transaction__kind")
        .annotate(total=Sum("amount"))
    ):
        posted[batch_id_from_late_reference(reference)][kind] += total
    campaigns = {c.pk: c for c in Campaign.objects.filter(pk__in=LateReleaseBatch.objects.values("campaign_id"))}
    wrong = []
    for batch in LateReleaseBatch.objects.order_by("pk"):
        fee, payout = posted[batch.pk][TransactionKind.FEE], posted[batch.pk][TransactionKind.PAYOUT]
        ok = released[batch.pk] == batch.amount == item_totals.get(batch.pk, 0)
        if batch.status == LateReleaseStatus.COLLECTING:
            ok = ok and fee == 0 and payout == 0
        else:
            split = fee_split(campaign=campaigns[batch.campaign_id], released=batch.amount)
            expected_fee, expected_net = (split.fee, split.net) if split else (0, 0)
            ok = ok and batch.fee == fee == expected_fee and batch.net == expected_net
            ok = ok and payout == (batch.net if batch.status == LateReleaseStatus.PAID else 0)
        if not ok:
            wrong.append(
                f"batch {batch.pk}: released {released[batch.pk]} (recorded {batch.amount}), fee {fee}"
                f" (recorded {batch.fee}), paid out {payout} (net {batch.net}, {batch.status})"
            )
    if wrong:
        problems.append(
            "Weekly batches whose release, fee or payout differs from their pledges: " + ", ".join(wrong[:SHOW])
        )
    return problems

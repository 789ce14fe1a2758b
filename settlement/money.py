"""Where the money is: a campaign's money read straight from the ledger, for its public page and the API.

Everything here is summed from the ledger entries on the campaign's escrow and payable accounts
(``escrow.vocabulary``), read generically by transaction kind and reference, so a new kind of
posting (a milestone's tranche, a holdback) shows up without a change here:

- into escrow: a hold about a pledge is raised from backers; any other hold (a matching round) is
  matched money;
- out of escrow: releases (to what the campaign is owed), grouped by what they are about and by
  day (the pledges released at the deadline, each tranche, matched money); refunds to backers
  (references about pledges) and matched money returned to its pool (any other reference);
- out of the payable account: the platform's fee and what was paid out to the initiator.

What is still in escrow and still owed are the two accounts' balances. The delivery holdback has
its own escrow account (``escrow.vocabulary_holdback``), summed apart in one more query: kept at
success, released on delivery, refunded on upheld reports and tiers declared not delivered, still held.
"""

import bisect
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Case, Count, F, Max, Min, Q, Sum, Value, When
from django.db.models.functions import TruncDate

from escrow.checkpoints import checkpoint_latest
from escrow.models import LedgerCheckpoint, LedgerEntry, LedgerTransaction, TransactionKind
from escrow.vocabulary import PLEDGE_REFERENCE_PREFIX, campaign_escrow_code, campaign_payable_code
from escrow.vocabulary_holdback import campaign_holdback_code
from projects.models import Campaign

_ABOUT_PLEDGES = ""  # the group of every transaction about one of the campaign's pledges


@dataclass(frozen=True)
class Release:
    """Money released from escrow about one thing (the pledges, a tranche, matched money) on one day."""

    about: str  # the transactions' reference; "" for the campaign's pledges
    day: date
    amount: int
    transactions: int
    first_at: datetime
    last_at: datetime

    @property
    def about_pledges(self) -> bool:
        return self.about == _ABOUT_PLEDGES


@dataclass(frozen=True)
class CampaignMoney:
    currency: str
    raised: int = 0
    matched: int = 0
    released: int = 0
    refunded: int = 0
    matched_returned: int = 0
    adjusted: int = 0
    held: int = 0
    fees: int = 0
    paid_out: int = 0
    owed: int = 0
    holdback_kept: int = 0
    holdback_released: int = 0
    holdback_refunded: int = 0
    holdback_held: int = 0
    releases: list[Release] = field(default_factory=list)
    transactions: int = 0
    sealed_transactions: int = 0
    checkpoint: LedgerCheckpoint | None = None

    @property
    def unsealed_transactions(self) -> int:
        return self.transactions - self.sealed_transactions


def campaign_accounts(campaign: Campaign) -> list[str]:
    """Return the codes of the campaign's own ledger accounts (escrow, then payable)."""
    return [campaign_escrow_code(campaign.pk), campaign_payable_code(campaign.pk)]


def _campaign_entries(campaign: Campaign):
    return LedgerEntry.objects.filter(account__code__in=campaign_accounts(campaign), currency=campaign.currency)


def campaign_money(*, campaign: Campaign) -> CampaignMoney:
    """Return where the campaign's money is, summed from its ledger entries (four queries)."""
    escrow_code, _ = campaign_accounts(campaign)
    about = Case(
        When(transaction__reference__startswith=PLEDGE_REFERENCE_PREFIX, then=Value(_ABOUT_PLEDGES)),
        default=F("transaction__reference"),
    )
    groups = (
        _campaign_entries(campaign)
        .values_list("account__code", "transaction__kind")
        .annotate(
            about=about,
            day=TruncDate("transaction__created_at"),
            inflow=Sum("amount", filter=Q(amount__gt=0), default=0),
            outflow=Sum("amount", filter=Q(amount__lt=0), default=0),
            total=Sum("amount"),
            n=Count("transaction_id", distinct=True),
            first_at=Min("transaction__created_at"),
            last_at=Max("transaction__created_at"),
        )
        .order_by()
    )
    sums: dict[str, int] = defaultdict(int)
    releases = []
    for code, kind, about_what, day, inflow, outflow, total, n, first_at, last_at in groups:
        in_escrow = code == escrow_code
        sums["held" if in_escrow else "owed"] += total
        pledges = about_what == _ABOUT_PLEDGES
        if in_escrow and kind == TransactionKind.HOLD:
            sums["raised" if pledges else "matched"] += inflow
        elif in_escrow and kind == TransactionKind.RELEASE:
            sums["released"] += -outflow
            releases.append(Release(about_what, day, -outflow, n, first_at, last_at))
        elif in_escrow and kind == TransactionKind.REFUND:
            sums["refunded" if pledges else "matched_returned"] += -outflow
        elif in_escrow:
            sums["adjusted"] += total
        elif kind == TransactionKind.FEE:
            sums["fees"] += -outflow
        elif kind == TransactionKind.PAYOUT:
            sums["paid_out"] += -outflow
    releases.sort(key=lambda r: (r.first_at, r.about))
    sums.update(_holdback_sums(campaign))
    checkpoint = checkpoint_latest()
    transactions = LedgerTransaction.objects.filter(
        entries__account__code__in=campaign_accounts(campaign), entries__currency=campaign.currency
    )
    counts = transactions.aggregate(
        n=Count("pk", distinct=True),
        sealed=Count("pk", distinct=True, filter=Q(pk__lte=checkpoint.last_transaction_id) if checkpoint else Q(pk=0)),
    )
    return CampaignMoney(
        currency=campaign.currency,
        releases=releases,
        transactions=counts["n"],
        sealed_transactions=counts["sealed"],
        checkpoint=checkpoint,
        **sums,
    )


def _holdback_sums(campaign: Campaign) -> dict[str, int]:
    rows = (
        LedgerEntry.objects.filter(account__code=campaign_holdback_code(campaign.pk), currency=campaign.currency)
        .values_list("transaction__kind")
        .annotate(
            inflow=Sum("amount", filter=Q(amount__gt=0), default=0),
            outflow=Sum("amount", filter=Q(amount__lt=0), default=0),
        )
        .order_by()
    )
    sums = {"holdback_kept": 0, "holdback_released": 0, "holdback_refunded": 0, "holdback_held": 0}
    for kind, inflow, outflow in rows:
        sums["holdback_kept"] += inflow
        sums["holdback_held"] += inflow + outflow
        if kind == TransactionKind.REFUND:
            sums["holdback_refunded"] += -outflow
        else:
            sums["holdback_released"] += -outflow
    return sums


@dataclass(frozen=True)
class LedgerLine:
    """One entry on one of the campaign's accounts, with its transaction and the checkpoint sealing it."""

    transaction_id: int
    created_at: datetime
    kind: str
    reference: str
    account: str
    amount: int
    currency: str
    checkpoint: int | None


def campaign_ledger_lines(*, campaign: Campaign, chunk_size: int = 2_000) -> Iterator[LedgerLine]:
    """Yield every entry on the campaign's accounts in transaction order, streamed from one query.

    Only the campaign's own legs: a backer's side of a hold names their account, which is theirs.
    """
    # Checkpoints are few (one per LEDGER_CHECKPOINT_BATCH_SIZE transactions): their bounds fit in memory.
    bounds = list(LedgerCheckpoint.objects.order_by("sequence").values_list("last_transaction_id", "sequence"))
    last_ids = [last_id for last_id, _ in bounds]
    rows = (
        _campaign_entries(campaign)
        .order_by("transaction_id", "pk")
        .values_list(
            "transaction_id",
            "transaction__created_at",
            "transaction__kind",
            "transaction__reference",
            "account__code",
            "amount",
            "currency",
        )
    )
    for txn_id, created_at, kind, reference, code, amount, currency in rows.iterator(chunk_size=chunk_size):
        index = bisect.bisect_left(last_ids, txn_id)
        sealed_by = bounds[index][1] if index < len(bounds) else None
        yield LedgerLine(txn_id, created_at, kind, reference, code, amount, currency, sealed_by)

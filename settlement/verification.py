"""Ledger verification: every money invariant of the platform, checked against the database.

``ledger_verify()`` returns a list of problems (empty when all is well), each naming the
offending rows, for ``manage.py verify_ledger``, the admin and the tests.
"""

from collections import defaultdict

from django.db.models import Count, Exists, F, OuterRef, Q, Sum

from escrow.checkpoints import checkpoints_verify
from escrow.models import AccountKind, GatewayOperation, LedgerEntry, LedgerTransaction, OperationKind, TransactionKind
from escrow.vocabulary import (
    PLEDGE_REFERENCE_PREFIX,
    campaign_id_from_escrow_code,
    campaign_id_from_payable_code,
    pledge_reference_expression,
    pool_id_from_funds_code,
)
from lending.verification import lending_verify
from matching.models import Allocation, Pool
from pledges.models import Pledge, PledgeStatus
from projects.models import Campaign, CampaignStatus

SHOW = 10  # offending rows named per problem


def _ids(rows) -> str:
    rows = list(rows[: SHOW + 1])
    shown = ", ".join(str(r) for r in rows[:SHOW])
    return shown + (", ..." if len(rows) > SHOW else "")


def _pledge_txn(kind: str):
    return LedgerTransaction.objects.filter(kind=kind, reference=pledge_reference_expression(OuterRef("pk")))


def ledger_verify() -> list[str]:
    """Return every broken invariant as a sentence naming the offending rows."""
    problems: list[str] = []
    problems += _check_double_entry()
    problems += _check_escrow_matches_pledges()
    problems += _check_pledges_posted_once()
    problems += _check_gateway()
    problems += lending_verify()
    problems += _check_pools()
    problems += _check_checkpoints()
    return problems


def _check_double_entry() -> list[str]:
    problems = []
    unbalanced = (
        LedgerEntry.objects.values("transaction_id", "currency")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .values_list("transaction_id", flat=True)
    )
    if unbalanced.exists():
        problems.append(f"Transactions whose entries do not sum to zero: {_ids(unbalanced)}")
    empty = LedgerTransaction.objects.filter(~Exists(LedgerEntry.objects.filter(transaction=OuterRef("pk"))))
    empty = empty.values_list("pk", flat=True)
    if empty.exists():
        problems.append(f"Transactions without entries: {_ids(empty)}")
    thin = LedgerTransaction.objects.annotate(n=Count("entries")).filter(n=1).values_list("pk", flat=True)
    if thin.exists():
        problems.append(f"Transactions with fewer than two entries: {_ids(thin)}")
    mixed = LedgerEntry.objects.exclude(currency=F("account__currency")).values_list("pk", flat=True)
    if mixed.exists():
        problems.append(f"Entries in another currency than their account: {_ids(mixed)}")
    return problems


def _check_escrow_matches_pledges() -> list[str]:
    problems = []
    escrow = defaultdict(int)
    for code, total in (
        LedgerEntry.objects.filter(account__kind=AccountKind.ESCROW)
        .values_list("account__code")
        .annotate(total=Sum("amount"))
    ):
        campaign_id = campaign_id_from_escrow_code(code)
        if campaign_id is not None:  # a matching pool's funds are checked by _check_pools
            escrow[campaign_id] += total
    held = defaultdict(int)
    for campaign_id, total in (
        Pledge.objects.filter(status=PledgeStatus.HELD).values_list("campaign_id").annotate(total=Sum("amount"))
    ):
        held[campaign_id] = total
    # Matched money paid into a campaign's escrow stays there until the campaign settles.
    matched = defaultdict(int)
    for campaign_id, total in (
        Allocation.objects.filter(paid_at__isnull=False, settled_at__isnull=True)
        .values_list("campaign_id")
        .annotate(total=Sum("amount"))
    ):
        matched[campaign_id] = total
    wrong = sorted(cid for cid in set(escrow) | set(held) | set(matched) if escrow[cid] != held[cid] + matched[cid])
    if wrong:
        details = ", ".join(
            f"campaign {cid}: escrow {escrow[cid]} != held {held[cid]}"
            + (f" + matched {matched[cid]}" if matched[cid] else "")
            for cid in wrong[:SHOW]
        )
        problems.append(f"Escrow balance differs from the held pledges: {details}")
    payable = defaultdict(int)
    for code, total in (
        LedgerEntry.objects.filter(account__kind=AccountKind.PAYABLE)
        .values_list("account__code")
        .annotate(total=Sum("amount"))
    ):
        payable[campaign_id_from_payable_code(code)] += total
    holding_money = [cid for cid in set(escrow) | set(payable) if escrow[cid] or payable[cid]]
    unsettled_money = Campaign.objects.filter(settled_at__isnull=False, pk__in=holding_money).values_list(
        "pk", flat=True
    )
    if unsettled_money.exists():
        problems.append(f"Settled campaigns with money left in escrow or payable: {_ids(unsettled_money)}")
    # Only while pledges can still come and go: from closing on, the shown total stays what was
    # raised while settlement moves the held pledges out one batch at a time.
    live_totals = Campaign.objects.filter(status__in=[CampaignStatus.LIVE, CampaignStatus.SUSPENDED]).values_list(
        "pk", "pledged_amount"
    )
    off = [cid for cid, shown in live_totals if shown != held[cid]]
    if off:
        problems.append(f"Campaigns whose shown total differs from their held pledges: {_ids(off)}")
    return problems


def _check_pledges_posted_once() -> list[str]:
    problems = []
    charged = [PledgeStatus.HELD, PledgeStatus.RELEASED, PledgeStatus.REFUNDED, PledgeStatus.CANCELLED]
    expectations = [
        ("without a hold in the ledger", Q(status__in=charged), ~Exists(_pledge_txn(TransactionKind.HOLD))),
        (
            "held in the ledger but never charged",
            Q(status__in=[PledgeStatus.PENDING, PledgeStatus.FAILED]),
            Exists(_pledge_txn(TransactionKind.HOLD)),
        ),
        (
            "released without a release posting",
            Q(status=PledgeStatus.RELEASED),
            ~Exists(_pledge_txn(TransactionKind.RELEASE)),
        ),
        (
            "refunded without a refund posting",
            Q(status__in=[PledgeStatus.REFUNDED, PledgeStatus.CANCELLED]),
            ~Exists(_pledge_txn(TransactionKind.REFUND)),
        ),
        (
            "still held but already released or refunded in the ledger",
            Q(status=PledgeStatus.HELD),
            Exists(_pledge_txn(TransactionKind.RELEASE)) | Exists(_pledge_txn(TransactionKind.REFUND)),
        ),
    ]
    for what, status_filter, ledger_filter in expectations:
        bad = Pledge.objects.filter(status_filter).filter(ledger_filter).values_list("pk", flat=True).order_by("pk")
        if bad.exists():
            problems.append(f"Pledges {what}: {_ids(bad)}")
    twice = (
        LedgerTransaction.objects.filter(
            kind__in=[TransactionKind.RELEASE, TransactionKind.REFUND], reference__startswith=PLEDGE_REFERENCE_PREFIX
        )
        .values("reference")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("reference", flat=True)
    )
    if twice.exists():
        problems.append(f"Pledges released or refunded more than once: {_ids(twice)}")
    return problems


def _check_gateway() -> list[str]:
    mismatched = (
        GatewayOperation.objects.filter(kind=OperationKind.CHARGE)
        .annotate(refunded=Sum("refunds__amount", filter=Q(refunds__status="succeeded"), default=0))
        .exclude(refunded=F("refunded_amount"))
        .values_list("pk", flat=True)
    )
    if mismatched.exists():
        return [f"Gateway charges whose refunded amount disagrees with their refunds: {_ids(mismatched)}"]
    return []


def _check_pools() -> list[str]:
    """A pool's balance is its deposit minus what rounds paid out of it plus what came back.

    (Minus what was left at closing, once refunded to the sponsor.)
    """
    balances = defaultdict(int)
    for code, total in (
        LedgerEntry.objects.filter(account__kind=AccountKind.ESCROW, account__code__startswith="pool:")
        .values_list("account__code")
        .annotate(total=Sum("amount"))
    ):
        pool_id = pool_id_from_funds_code(code)
        if pool_id is not None:
            balances[pool_id] += total
    paid = defaultdict(int)
    returned = defaultdict(int)
    for pool_id, total, back in (
        Allocation.objects.filter(paid_at__isnull=False)
        .values_list("round__pool_id")
        .annotate(total=Sum("amount"), back=Sum("returned_amount"))
    ):
        paid[pool_id] += total
        returned[pool_id] += back
    funded = Pool.objects.filter(funded_at__isnull=False).values_list(
        "pk", "amount", "leftover", "leftover_returned_at"
    )
    gross = {pk: amount for pk, amount, _leftover, _returned in funded}
    deposits = {pk: amount - (leftover if returned else 0) for pk, amount, leftover, returned in funded}
    problems = []
    pools = sorted(set(balances) | set(paid) | set(deposits))
    wrong = [p for p in pools if balances[p] != deposits.get(p, 0) - paid[p] + returned[p]]
    if wrong:
        details = ", ".join(
            f"pool {p}: balance {balances[p]} != deposit {deposits.get(p, 0)} - paid {paid[p]} + returned {returned[p]}"
            for p in wrong[:SHOW]
        )
        problems.append(f"Pool balance differs from deposits minus allocations plus returns: {details}")
    over = [p for p in pools if paid[p] - returned[p] > gross.get(p, 0) or balances[p] < 0]
    if over:
        problems.append(f"Pools that allocated more than they hold: {_ids(over)}")
    return problems


def _check_checkpoints() -> list[str]:
    """Every sealed checkpoint still matches the ledger rows it sealed (``escrow.checkpoints``)."""
    return checkpoints_verify()

"""Ledger verification: every money invariant of the platform, checked against the database.

``ledger_verify()`` returns a list of problems (empty when all is well), each naming the
offending rows, for ``manage.py verify_ledger``, the admin and the tests.
"""

from collections import defaultdict

from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from escrow.checkpoints import checkpoints_verify
from escrow.models import (
    AccountKind,
    GatewayOperation,
    LedgerEntry,
    LedgerTransaction,
    OperationKind,
    OperationStatus,
    TransactionKind,
)
from escrow.vocabulary import (
    PLEDGE_REFERENCE_PREFIX,
    POOL_REFUND_KEY_PREFIX,
    campaign_id_from_escrow_code,
    campaign_id_from_payable_code,
    pledge_id_from_reference,
    pledge_reference_expression,
    pool_id_from_funds_code,
    pool_refund_part_ids,
)
from escrow.vocabulary_holdback import (
    HOLDBACK_PLEDGE_REFERENCE_PREFIX,
    HOLDBACK_TIER_REFERENCE_PREFIX,
    campaign_id_from_holdback_code,
    pledge_id_from_holdback_reference,
)
from escrow.vocabulary_tranches import (
    REMAINDER_REFERENCE_PREFIX,
    campaign_id_from_staged_code,
    milestone_reference,
    pledge_id_from_remainder_reference,
    tranche_fee_key,
    tranche_release_key,
)
from fulfilment.models import REFUNDED_STATUSES, Delivery, Holdback, Shipment
from lending.verification import lending_verify
from matching.models import Allocation, Pool
from pledges.models import Pledge, PledgeAddOn, PledgeChange, PledgeChangeStatus, PledgeStatus
from pledges.verification import installments_verify
from projects.milestones.models import Milestone, MilestoneStatus
from projects.models import Campaign, CampaignStatus

from .late_verification import late_verify, settled_money_expected
from .models import RemainderRefund
from .tranches import fee_split

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
    problems += _check_pledge_balances()
    problems += _check_gateway()
    problems += lending_verify()
    problems += _check_pools()
    problems += _check_checkpoints()
    problems += _check_staged_release()
    problems += _check_shipping()
    problems += _check_addons()
    problems += _check_holdback()
    problems += late_verify()
    problems += installments_verify()
    return problems


def _check_shipping() -> list[str]:
    """A pledge's shipping is part of its whole: only a reward that ships has any, and it names a country.

    The whole (``amount``) is what the hold, release and refund checks above count, so shipping
    needs no ledger check of its own; what can go wrong is shipping on a pledge that ships nothing
    (money taken for no parcel), shipping without a destination, or a pledge whose shipping is
    not what its last change made it (a change's difference, posted to the ledger, includes the
    change of shipping, so the two must agree).
    """
    problems = []
    nothing_ships = (
        Pledge.objects.exclude(shipping_country="")
        .filter(Q(reward__isnull=True) | Q(reward__ships=False))
        .values_list("pk", flat=True)
    )
    if nothing_ships.exists():
        problems.append(f"Pledges with shipping for a reward that does not ship: {_ids(nothing_ships)}")
    nowhere = Pledge.objects.filter(shipping_country="", shipping_amount__gt=0).values_list("pk", flat=True)
    if nowhere.exists():
        problems.append(f"Pledges charged shipping without a country: {_ids(nowhere)}")
    last_change = PledgeChange.objects.filter(pledge_id=OuterRef("pk"), status=PledgeChangeStatus.DONE).order_by("-id")
    drifted = (
        Pledge.objects.filter(Exists(last_change))
        .annotate(
            changed_country=Subquery(last_change.values("to_shipping_country")[:1]),
            changed_amount=Subquery(last_change.values("to_shipping_amount")[:1]),
        )
        .exclude(shipping_country=F("changed_country"), shipping_amount=F("changed_amount"))
        .values_list("pk", flat=True)
    )
    if drifted.exists():
        problems.append(f"Pledges whose shipping differs from what their last change made it: {_ids(drifted)}")
    return problems


def _check_addons() -> list[str]:
    """A pledge's add-ons are part of its whole: ``addons_amount`` is what its add-on rows cost.

    As with shipping, the whole is what the hold, release and refund checks count; what can go
    wrong is an ``addons_amount`` (money taken) that no add-on rows account for, or rows that
    the amount leaves out.
    """
    line_totals = (
        PledgeAddOn.objects.filter(pledge_id=OuterRef("pk"))
        .values("pledge_id")
        .annotate(total=Sum(F("quantity") * F("unit_price")))
        .values("total")
    )
    # Only pledges that carry add-ons, or rows of pledges that say they carry none: the rest need no look.
    mismatched = (
        Pledge.objects.filter(addons_amount__gt=0)
        .annotate(lines_total=Coalesce(Subquery(line_totals), 0))
        .exclude(addons_amount=F("lines_total"))
        .values_list("pk", flat=True)
    )
    unaccounted = PledgeAddOn.objects.filter(pledge__addons_amount=0).values_list("pledge_id", flat=True).distinct()
    problems = []
    if mismatched.exists():
        problems.append(f"Pledges whose add-ons amount is not what their add-ons cost: {_ids(mismatched)}")
    if unaccounted.exists():
        problems.append(f"Pledges with add-ons their amount leaves out: {_ids(unaccounted)}")
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
    # What escrow holds of each pledge (paid over time: the installments paid so far), and the
    # whole pledged, which the campaign's shown total counts.
    held, pledged = defaultdict(int), defaultdict(int)
    for campaign_id, total, whole in (
        Pledge.objects.filter(status=PledgeStatus.HELD)
        .values_list("campaign_id")
        .annotate(total=Sum(F("amount") - F("unheld_amount")), whole=Sum("amount"))
    ):
        held[campaign_id], pledged[campaign_id] = total, whole
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
    # A settled campaign's late pledges wait in escrow, and an unfinished weekly batch in its payable.
    late_escrow, late_payable = settled_money_expected()
    holding_money = [
        cid
        for cid in set(escrow) | set(payable)
        if escrow[cid] != late_escrow[cid] or payable[cid] != late_payable[cid]
    ]
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
    off = [cid for cid, shown in live_totals if shown != pledged[cid]]
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


def _check_pledge_balances() -> list[str]:
    """Per pledge: what the ledger charged into escrow less what it refunded equals what it holds.

    Charged is the pledge's hold plus the differences its changes added; refunded is its refund
    plus the differences its changes gave back. A held or released pledge nets its amount; one
    refunded or cancelled nets zero; and no pledge is ever refunded more than it was charged.
    """
    kinds = [TransactionKind.HOLD, TransactionKind.ADJUSTMENT, TransactionKind.REFUND]
    rows = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.ESCROW,
            transaction__kind__in=kinds,
            transaction__reference__startswith=PLEDGE_REFERENCE_PREFIX,
        )
        .values("transaction__reference")
        .annotate(
            charged=Sum("amount", filter=Q(amount__gt=0), default=0),
            refunded=Sum("amount", filter=Q(amount__lt=0), default=0),
        )
        .values_list("transaction__reference", "charged", "refunded")
    )
    money = {pledge_id_from_reference(ref): (charged, -refunded) for ref, charged, refunded in rows}
    wrong, over = [], []
    holding = [PledgeStatus.HELD, PledgeStatus.RELEASED]
    returned = [PledgeStatus.REFUNDED, PledgeStatus.CANCELLED]
    pledges = (
        Pledge.objects.filter(status__in=holding + returned)
        .order_by("pk")
        .values_list("pk", F("amount") - F("unheld_amount"), "status")
    )
    for pk, amount, status in pledges.iterator(chunk_size=5000):
        charged, refunded = money.get(pk, (0, 0))
        if refunded > charged:
            over.append(pk)
        if charged - refunded != (amount if status in holding else 0):
            wrong.append(pk)
    problems = []
    if wrong:
        problems.append(f"Pledges whose charges less refunds in the ledger differ from what they hold: {_ids(wrong)}")
    if over:
        problems.append(f"Pledges refunded more than they were charged: {_ids(over)}")
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

    (Plus what the sponsor's last pool rolled over into it; minus what was left at closing, once
    refunded to the sponsor or rolled over into their next pool.) Never below zero.
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
    funded = list(
        Pool.objects.filter(funded_at__isnull=False).values_list(
            "pk", "amount", "leftover", "leftover_returned_at", "next_pool_id"
        )
    )
    # What a closed pool rolled over is a deposit into the next one.
    rolled_in = defaultdict(int)
    for _pk, _amount, leftover, gone_at, next_pool_id in funded:
        if gone_at and next_pool_id is not None:
            rolled_in[next_pool_id] += leftover
    gross = {pk: amount + rolled_in[pk] for pk, amount, *_rest in funded}
    deposits = {pk: gross[pk] - (leftover if gone_at else 0) for pk, _amount, leftover, gone_at, _next in funded}
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
    return problems + _check_pool_refunds(funded)


def _check_pool_refunds(funded) -> list[str]:
    """A closed pool's refund sums to its leftover; no pool's charge is refunded above its amount.

    (A leftover that rolled in goes back against the charges it came from, in parts.)
    """
    by_pool = defaultdict(int)
    by_charge = defaultdict(int)
    for key, amount in GatewayOperation.objects.filter(
        kind=OperationKind.REFUND, status=OperationStatus.SUCCEEDED, idempotency_key__startswith=POOL_REFUND_KEY_PREFIX
    ).values_list("idempotency_key", "amount"):
        ids = pool_refund_part_ids(key)
        if ids is not None:
            by_pool[ids[0]] += amount
            by_charge[ids[1]] += amount
    amounts = {pk: amount for pk, amount, *_rest in funded}
    problems = []
    over = sorted(p for p, total in by_charge.items() if total > amounts.get(p, 0))
    if over:
        problems.append(f"Pools whose charge was refunded more than it took: {_ids(over)}")
    wrong = sorted(
        pk
        for pk, _amount, leftover, gone_at, next_pool_id in funded
        if gone_at and next_pool_id is None and by_pool[pk] != leftover
    )
    if wrong:
        problems.append(f"Closed pools whose gateway refunds differ from what was left: {_ids(wrong)}")
    return problems


def _check_checkpoints() -> list[str]:
    """Every sealed checkpoint still matches the ledger rows it sealed (``escrow.checkpoints``)."""
    return checkpoints_verify()


def _escrow_balances_by_campaign(code_suffix: str, campaign_of) -> defaultdict:
    """Balance per campaign of the escrow accounts whose code ends with `code_suffix`.

    Staged escrow and the delivery holdback are both campaign escrow accounts told apart by the
    suffix of their code; `campaign_of` is the vocabulary's parser for that kind of code.
    """
    balances = defaultdict(int)
    for code, total in (
        LedgerEntry.objects.filter(account__kind=AccountKind.ESCROW, account__code__endswith=code_suffix)
        .values_list("account__code")
        .annotate(total=Sum("amount"))
    ):
        campaign_id = campaign_of(code)
        if campaign_id is not None:
            balances[campaign_id] += total
    return balances


def _check_staged_release() -> list[str]:
    """Campaigns with milestones: staged escrow, tranches and the refund of the remainder agree.

    - staged escrow = what was released into it (the released pledges) - tranches released -
      parts of the remainder refunded: what is neither released nor refunded;
    - each released tranche was posted once, for its amount, with the fee on it alone; no other
      milestone has a release posting (together with a zero payable after each tranche, released
      + refunded + fees = raised);
    - a pledge's part of the remainder is at most what it paid, and only released pledges have one;
    - a finished refund of the remainder left nothing in staged escrow but signed-off tranches.
    """
    problems = []
    staged = _escrow_balances_by_campaign(":staged", campaign_of=campaign_id_from_staged_code)
    milestones = list(Milestone.objects.filter(amount__isnull=False).select_related("campaign"))
    campaign_ids = sorted(set(staged) | {m.campaign_id for m in milestones})
    raised = defaultdict(int)
    for campaign_id, total in (
        Pledge.objects.filter(campaign_id__in=campaign_ids, status=PledgeStatus.RELEASED)
        .values_list("campaign_id")
        .annotate(total=Sum("amount"))
    ):
        raised[campaign_id] = total
    refunded_by_pledge, refunded = _refunds_under(
        REMAINDER_REFERENCE_PREFIX,
        pledge_of=pledge_id_from_remainder_reference,
        campaign_of=campaign_id_from_staged_code,
    )
    released = defaultdict(int)
    for m in milestones:
        if m.status == MilestoneStatus.RELEASED:
            released[m.campaign_id] += m.amount
    wrong = [c for c in campaign_ids if staged[c] != raised[c] - released[c] - refunded[c]]
    if wrong:
        details = ", ".join(
            f"campaign {c}: staged {staged[c]} != raised {raised[c]} - released {released[c]} - refunded {refunded[c]}"
            for c in wrong[:SHOW]
        )
        problems.append(f"Staged escrow differs from what is neither released nor refunded: {details}")
    posted = dict(
        LedgerEntry.objects.filter(
            transaction__kind__in=[TransactionKind.RELEASE, TransactionKind.FEE],
            transaction__reference__startswith="milestone:",
            amount__gt=0,
        )
        .values_list("transaction__idempotency_key")
        .annotate(total=Sum("amount"))
    )
    bad_tranches = []
    for m in milestones:
        release = posted.get(tranche_release_key(m.pk), 0)
        expected = m.amount if m.status == MilestoneStatus.RELEASED else 0
        fee = posted.get(tranche_fee_key(m.pk), 0)
        split = fee_split(campaign=m.campaign, released=m.amount) if m.position > 1 and expected else None
        if release != expected or fee != (split.fee if split else 0):
            bad_tranches.append(milestone_reference(m.pk))
    if bad_tranches:
        problems.append(f"Tranches whose release or fee differs from their milestone: {_ids(bad_tranches)}")
    pledges = (
        dict(Pledge.objects.filter(pk__in=list(refunded_by_pledge)).values_list("pk", "amount"))
        if refunded_by_pledge
        else {}
    )
    statuses = (
        dict(Pledge.objects.filter(pk__in=list(refunded_by_pledge)).values_list("pk", "status"))
        if refunded_by_pledge
        else {}
    )
    over = sorted(
        p
        for p, total in refunded_by_pledge.items()
        if total > pledges.get(p, 0) or statuses.get(p) != PledgeStatus.RELEASED
    )
    if over:
        problems.append(f"Pledges refunded more of the remainder than they paid (or not released): {_ids(over)}")
    for job in RemainderRefund.objects.filter(finished_at__isnull=False):
        left = sum(
            m.amount for m in milestones if m.campaign_id == job.campaign_id and m.status == MilestoneStatus.APPROVED
        )
        if staged[job.campaign_id] != left or refunded[job.campaign_id] != job.amount:
            problems.append(
                f"Campaign {job.campaign_id}: refund of the remainder finished with {staged[job.campaign_id]} "
                f"in staged escrow and {refunded[job.campaign_id]} of {job.amount} refunded"
            )
    return problems


def _check_holdback() -> list[str]:
    """The delivery holdback: kept, released, refunded and still held agree with the deliveries.

    - per campaign: released (fees included) + refunded + still held in holdback escrow = the
      holdback kept, and the deliveries' parts sum to it;
    - each settled tier's release and fee were posted once, for what its shipment recorded;
    - no pledge got more of the holdback back than its part (never above what it paid), and only
      a pledge whose report staff upheld, or whose tier staff declared not delivered, got any.
    """
    problems = []
    held = _escrow_balances_by_campaign(":holdback", campaign_of=campaign_id_from_holdback_code)
    kept = dict(Holdback.objects.values_list("campaign_id", "amount"))
    parts = dict(
        Delivery.objects.values_list("campaign_id").annotate(total=Sum("part")).values_list("campaign_id", "total")
    )
    released = defaultdict(int)
    fees = defaultdict(int)
    for campaign_id, rel, fee in Shipment.objects.values_list("campaign_id", "released_amount", "fee_amount"):
        released[campaign_id] += rel
        fees[campaign_id] += fee
    refunded_by_pledge, refunded = _refunds_under(
        HOLDBACK_PLEDGE_REFERENCE_PREFIX,
        pledge_of=pledge_id_from_holdback_reference,
        campaign_of=campaign_id_from_holdback_code,
    )
    posted_release = defaultdict(int)
    for code, total in (
        LedgerEntry.objects.filter(
            transaction__kind=TransactionKind.RELEASE,
            transaction__reference__startswith=HOLDBACK_TIER_REFERENCE_PREFIX,
            amount__lt=0,
        )
        .values_list("account__code")
        .annotate(total=Sum("amount"))
    ):
        posted_release[campaign_id_from_holdback_code(code)] += -total
    wrong = []
    for c in sorted(set(kept) | set(held) | set(refunded) | set(posted_release)):
        if (
            posted_release[c] + refunded[c] + held[c] != kept.get(c, 0)
            or posted_release[c] != released[c]
            or parts.get(c, 0) != kept.get(c, 0)
        ):
            wrong.append(
                f"campaign {c}: released {posted_release[c]} (recorded {released[c]}) + refunded {refunded[c]}"
                f" + held {held[c]} != holdback {kept.get(c, 0)} (parts {parts.get(c, 0)})"
            )
    if wrong:
        problems.append(f"Holdback differs from what is released, refunded and held: {', '.join(wrong[:SHOW])}")
    fee_posted = dict(
        LedgerEntry.objects.filter(
            transaction__kind=TransactionKind.FEE,
            transaction__reference__startswith=HOLDBACK_TIER_REFERENCE_PREFIX,
            amount__gt=0,
        )
        .values_list("account__code")
        .annotate(total=Sum("amount"))
    )
    fee_total = sum(fee_posted.values())
    if fee_total != sum(fees.values()):
        problems.append(
            f"Holdback fees posted ({fee_total}) differ from the fees shipments recorded ({sum(fees.values())})"
        )
    if refunded_by_pledge:
        deliveries = {
            pledge_id: (part, status, refunded_amount)
            for pledge_id, part, status, refunded_amount in Delivery.objects.filter(
                pledge_id__in=list(refunded_by_pledge)
            ).values_list("pledge_id", "part", "status", "refunded_amount")
        }
        paid = dict(Pledge.objects.filter(pk__in=list(refunded_by_pledge)).values_list("pk", "amount"))
        over = sorted(
            p
            for p, total in refunded_by_pledge.items()
            if p not in deliveries
            or total > deliveries[p][0]
            or total > paid.get(p, 0)
            or total != deliveries[p][2]
            or deliveries[p][1] not in REFUNDED_STATUSES
        )
        if over:
            problems.append(
                "Pledges refunded more of the holdback than their part (or not owed it: no upheld report,"
                f" tier not declared undelivered): {_ids(over)}"
            )
    return problems


def _refunds_under(prefix: str, *, pledge_of, campaign_of) -> tuple[dict[int, int], dict[int, int]]:
    """Sum the refunds posted under references starting with ``prefix``: (by pledge, by campaign).

    ``pledge_of`` reads the pledge from a reference, ``campaign_of`` the campaign from the code of
    the account the money left (the vocabulary's parsers).
    """
    by_pledge, by_campaign = defaultdict(int), defaultdict(int)
    for reference, code, total in (
        LedgerEntry.objects.filter(
            transaction__kind=TransactionKind.REFUND, transaction__reference__startswith=prefix, amount__lt=0
        )
        .values_list("transaction__reference", "account__code")
        .annotate(total=Sum("amount"))
    ):
        by_pledge[pledge_of(reference)] += -total
        by_campaign[campaign_of(code)] += -total
    return by_pledge, by_campaign

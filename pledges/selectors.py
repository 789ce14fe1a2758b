"""Read queries for pledges, shared by pages and the API."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection
from django.db.models import Count, F, Prefetch, QuerySet, Sum
from django.db.models.functions import TruncDate

from crowdfund_site.bulk import AnyOf
from escrow.gateway import RefundRequest
from escrow.vocabulary import pledge_topup_refund_key, refund_key
from escrow.vocabulary_installments import installment_refund_key
from projects.models import Campaign

from .models import (
    COUNTED_STATUSES,
    OPEN_STATUSES,
    InstallmentPaidTo,
    InstallmentStatus,
    Pledge,
    PledgeAddOn,
    PledgeChange,
    PledgeChangeStatus,
    PledgeInstallment,
    PledgeStatus,
)

# Pledges an initiator sees in their backer list: money was taken at some point.
BACKER_LIST_STATUSES = (*COUNTED_STATUSES, PledgeStatus.REFUNDED, PledgeStatus.CANCELLED)


def _with_history(pledges: QuerySet[Pledge]) -> QuerySet[Pledge]:
    """Prefetch each pledge's changes that were made, oldest first, with their rewards (one more query)."""
    made = PledgeChange.objects.filter(status=PledgeChangeStatus.DONE).select_related(
        "from_reward", "to_reward", "actor"
    )
    return pledges.prefetch_related(Prefetch("changes", queryset=made.order_by("created_at", "id"), to_attr="history"))


def pledges_of_backer(*, backer) -> QuerySet[Pledge]:
    """Return ``backer``'s pledges, newest first, with campaign and reward joined and their change history."""
    return _with_history(
        Pledge.objects.filter(backer=backer).select_related("campaign", "reward").order_by("-created_at", "-id")
    )


def open_pledge_of_backer(*, backer, campaign_id: int) -> Pledge | None:
    """Return the pledge ``backer`` manages on a campaign (pending or held; the oldest if legacy data has several)."""
    if backer is None or not backer.is_authenticated:
        return None
    return (
        Pledge.objects.filter(backer=backer, campaign_id=campaign_id, status__in=OPEN_STATUSES)
        .order_by("legacy_duplicate", "created_at", "id")
        .first()
    )


def backer_state_on_campaign(*, backer, campaign_id: int) -> tuple[bool, int | None]:
    """Return (backs it: a held or released pledge, the id of the open pledge they manage) in one query."""
    if backer is None or not backer.is_authenticated:
        return False, None
    rows = list(
        Pledge.objects.filter(
            backer_id=backer.pk, campaign_id=campaign_id, status__in=(*COUNTED_STATUSES, PledgeStatus.PENDING)
        )
        .order_by("legacy_duplicate", "created_at", "id")
        .values_list("pk", "status")
    )
    open_id = next((pk for pk, status in rows if status in OPEN_STATUSES), None)
    return any(status in COUNTED_STATUSES for _pk, status in rows), open_id


def pledge_charges_remaining(*, pledge: Pledge) -> list[tuple[str, int, str]]:
    """Return the pledge's gateway charges, oldest first, as (charge reference, amount left, final refund key).

    The pledge's own charge, then one per change that charged more; what is left of each is its
    amount less the partial refunds drawn on it. The amounts left add up to the pledge's amount.
    """
    return _charges_remaining(pledge=pledge, changes=_made_changes([pledge.pk]).get(pledge.pk, []))


def _made_changes(pledge_ids: list[int]) -> dict[int, list[PledgeChange]]:
    changes: dict[int, list[PledgeChange]] = {}
    # One array parameter, not one per pledge: settlement asks for a batch of thousands at a time.
    rows = PledgeChange.objects.filter(AnyOf(F("pledge_id"), pledge_ids), status=PledgeChangeStatus.DONE).order_by("id")
    for change in rows.only("pk", "pledge_id", "from_amount", "to_amount", "charge_reference", "refund_parts"):
        changes.setdefault(change.pledge_id, []).append(change)
    return changes


def _charges_remaining(*, pledge, changes: list[PledgeChange]) -> list[tuple[str, int, str]]:
    first_amount = changes[0].from_amount if changes else pledge.amount
    charges = [[pledge.payment_reference, first_amount, refund_key(pledge.pk)]]
    refunded: dict[str, int] = {}
    for change in changes:
        if change.to_amount > change.from_amount:
            charges.append(
                [change.charge_reference, change.to_amount - change.from_amount, pledge_topup_refund_key(change.pk)]
            )
        for reference, amount in change.refund_parts:
            refunded[reference] = refunded.get(reference, 0) + amount
    return [(ref, amount - refunded.get(ref, 0), key) for ref, amount, key in charges]


def pledge_partial_refund_requests(*, refunds: list[tuple[int, int, str]], key, charge_key) -> list[RefundRequest]:
    """Return the gateway refunds of ``(pledge id, amount, charge reference)`` parts of held or released pledges.

    A pledge never raised is one refund of its charge under ``key(pledge id)``. A raised one has
    several charges: the part is drawn on the newest first, none beyond what it has left, the
    piece on its own first charge under ``key(pledge id)`` and the others under
    ``charge_key(pledge id, n)`` (n: the charge's position, 1 on).
    """
    changes = _made_changes([pledge_id for pledge_id, _amount, _ref in refunds])
    requests = []
    for pledge_id, amount, reference in refunds:
        if pledge_id not in changes:
            requests.append(RefundRequest(idempotency_key=key(pledge_id), charge_reference=reference, amount=amount))
            continue
        shell = Pledge(pk=pledge_id, payment_reference=reference)
        charges = list(enumerate(_charges_remaining(pledge=shell, changes=changes[pledge_id])))
        left = amount
        for n, (ref, remaining, _final_key) in reversed(charges):
            take = min(left, remaining)
            if take > 0:
                part_key = key(pledge_id) if n == 0 else charge_key(pledge_id, n)
                requests.append(RefundRequest(idempotency_key=part_key, charge_reference=ref, amount=take))
                left -= take
        if left:  # more than the pledge's charges hold: the gateway refuses it as it would any such refund
            requests.append(RefundRequest(idempotency_key=key(pledge_id), charge_reference=reference, amount=amount))
    return requests


def pledge_refund_requests(*, pledges: list[tuple[int, int, str]]) -> list[RefundRequest]:
    """Return the gateway refunds that give back ``(pledge id, amount, charge reference)`` pledges in full.

    A pledge never changed is one refund of its charge under its refund key, as always (and costs
    no query beyond the one that looks for changes in the whole batch). A pledge whose amount was
    raised has several charges: what is left of each is refunded under its own key. ``amount`` is
    what the card paid (``Pledge.card_amount``): a pledge paid wholly from the backer's balance
    (0) has nothing to refund at the gateway.
    """
    pledges = [row for row in pledges if row[1]]
    changes = _made_changes([pledge_id for pledge_id, _amount, _ref in pledges])
    later_installments = _later_installments_in_escrow([pledge_id for pledge_id, _amount, _ref in pledges])
    requests = []
    for pledge_id, amount, reference in pledges:
        if pledge_id in later_installments:
            # Paid over time: each installment in escrow was its own charge, refunded under its own
            # key; the first was the pledge's charge, the rest of what the pledge holds.
            extra = later_installments[pledge_id]
            requests += extra
            amount -= sum(request.amount for request in extra)
        if pledge_id not in changes:
            requests.append(
                RefundRequest(idempotency_key=refund_key(pledge_id), charge_reference=reference, amount=amount)
            )
            continue
        shell = Pledge(pk=pledge_id, amount=amount, payment_reference=reference)
        requests += [
            RefundRequest(idempotency_key=key, charge_reference=ref, amount=left)
            for ref, left, key in _charges_remaining(pledge=shell, changes=changes[pledge_id])
            if left > 0
        ]
    return requests


def _later_installments_in_escrow(pledge_ids: list[int]) -> dict[int, list[RefundRequest]]:
    """The gateway refunds of the installments after the first that pledges paid into escrow (one query)."""
    if not pledge_ids:
        return {}
    found: dict[int, list[RefundRequest]] = {}
    rows = (
        PledgeInstallment.objects.filter(
            AnyOf(F("pledge_id"), pledge_ids),
            number__gt=1,
            status=InstallmentStatus.PAID,
            paid_to=InstallmentPaidTo.ESCROW,
        )
        .order_by("pledge_id", "number")
        .values_list("pledge_id", "pk", "charge_reference", "amount")
    )
    for pledge_id, pk, reference, amount in rows:
        found.setdefault(pledge_id, []).append(
            RefundRequest(idempotency_key=installment_refund_key(pk), charge_reference=reference, amount=amount)
        )
    return found


def installments_of_pledge(*, pledge: Pledge) -> list[PledgeInstallment]:
    """Return a pledge's installments in order (empty for a pledge paid at once), for its page and the API."""
    if not pledge.installment_plan:
        return []
    return list(PledgeInstallment.objects.filter(pledge=pledge).order_by("number"))


def pledge_of_backer_get(*, backer, pledge_id: int) -> Pledge | None:
    """Return the pledge if it is ``backer``'s own, else None (another backer's pledge stays unseen)."""
    return pledges_of_backer(backer=backer).filter(pk=pledge_id).first()


def _backer_list_pledges(*, campaign: Campaign) -> QuerySet[Pledge]:
    """The campaign's pledges that took money: what the backer list and its CSV are made of."""
    return Pledge.objects.filter(campaign=campaign, status__in=BACKER_LIST_STATUSES)


def pledges_of_campaign_for_initiator(*, campaign: Campaign) -> QuerySet[Pledge]:
    """Return the campaign's pledges that took money, newest first, with backer, reward and change history."""
    return _with_history(
        _backer_list_pledges(campaign=campaign).select_related("backer", "reward").order_by("-created_at", "-id")
    )


def backer_list_rows(*, campaign: Campaign) -> QuerySet[Pledge]:
    """The initiator's backer list: one row per pledge a backer manages, newest first.

    Data from before "one open pledge per backer" can hold extra pledges per backer (flagged
    ``legacy_duplicate``); they are not rows of their own but shown in their backer's row
    (``legacy_extras_attach``), so that one backer reads as one backer.
    """
    return pledges_of_campaign_for_initiator(campaign=campaign).filter(legacy_duplicate=False)


def legacy_extras_attach(*, campaign: Campaign, rows: list[Pledge]) -> list[Pledge]:
    """Give each row ``legacy_extras``: its backer's legacy extra pledges on the campaign (one query).

    A backer with several rows on the page (a refunded pledge and a new one) gets them on the
    newest; the rows are returned as given.
    """
    newest_row_of = {}
    for row in rows:
        row.legacy_extras = []
        newest_row_of.setdefault(row.backer_id, row)
    if newest_row_of:
        extras = (
            _backer_list_pledges(campaign=campaign)
            .filter(legacy_duplicate=True, backer_id__in=list(newest_row_of))
            .select_related("reward")
            .order_by("-created_at", "-id")
        )
        for extra in extras:
            newest_row_of[extra.backer_id].legacy_extras.append(extra)
    return rows


def pledges_of_campaign_export(*, campaign: Campaign) -> Iterator[Pledge]:
    """Yield every pledge of the backer list, oldest first, streamed (with their histories and add-ons, per chunk)."""
    ordered = pledges_of_campaign_for_initiator(campaign=campaign).order_by("created_at", "id")
    pledges = ordered.iterator(chunk_size=2_000)
    if not campaign.addon_count:
        yield from pledges
        return
    chunk = []
    for pledge in pledges:
        chunk.append(pledge)
        if len(chunk) == 2_000:
            yield from pledge_addons_attach(pledges=chunk)
            chunk = []
    yield from pledge_addons_attach(pledges=chunk)


def pledge_addons_attach(*, pledges: list[Pledge]) -> list[Pledge]:
    """Give each pledge ``addon_list``: its add-on rows with their add-ons, cheapest first; return the pledges.

    One query for all the pledges that carry any (``addons_amount``), none when no pledge does.
    """
    pledges = list(pledges)
    carrying = {pledge.pk: pledge for pledge in pledges if pledge.addons_amount}
    for pledge in pledges:
        pledge.addon_list = []
    if carrying:
        for line in PledgeAddOn.objects.filter(pledge_id__in=list(carrying)).select_related("addon"):
            line.pledge = carrying[line.pledge_id]  # its currency, without reading the pledge again
            line.pledge.addon_list.append(line)
    return pledges


@dataclass(frozen=True)
class RewardBreakdownRow:
    reward_id: int | None
    title: str
    minimum_amount: int | None
    quantity_limit: int | None
    pledges: int
    amount: int


def reward_breakdown(*, campaign: Campaign) -> list[RewardBreakdownRow]:
    """Return held and released pledges per reward tier (and "no reward"), in tier order.

    Two queries whatever the number of tiers and pledges: the tiers and one grouped sum.
    """
    totals = {
        row["reward_id"]: (row["pledges"], row["amount"] or 0)
        for row in Pledge.objects.filter(campaign=campaign, status__in=COUNTED_STATUSES)
        .order_by()
        .values("reward_id")
        .annotate(pledges=Count("id"), amount=Sum("amount"))
    }
    rows = [
        RewardBreakdownRow(
            reward_id=reward.pk,
            title=reward.title,
            minimum_amount=reward.minimum_amount,
            quantity_limit=reward.quantity_limit,
            pledges=totals.get(reward.pk, (0, 0))[0],
            amount=totals.get(reward.pk, (0, 0))[1],
        )
        for reward in campaign.rewards.all()
    ]
    pledges, amount = totals.get(None, (0, 0))
    rows.append(
        RewardBreakdownRow(
            reward_id=None, title="", minimum_amount=None, quantity_limit=None, pledges=pledges, amount=amount
        )
    )
    return rows


def pledges_per_day(*, campaign: Campaign) -> list[tuple[date, int, int]]:
    """Return (day, pledges, amount) of held and released pledges by the day they were held (one query).

    Days are in the current time zone; days without pledges are left out.
    """
    rows = (
        Pledge.objects.filter(campaign=campaign, status__in=COUNTED_STATUSES, held_at__isnull=False)
        .annotate(day=TruncDate("held_at"))
        .order_by("day")
        .values("day")
        .annotate(pledges=Count("id"), amount=Sum("amount"))
    )
    return [(row["day"], row["pledges"], row["amount"] or 0) for row in rows]


# Held pledges of one campaign summed per forecast interval; ``held`` is the pledge's hold time in
# seconds since the epoch, computed by each database as ``risk.selectors.EpochSeconds`` does. The ORM expression
# it stands for:
#     Pledge.objects.filter(campaign_id=..., held_at__lte=end, status__in=COUNTED_STATUSES)
#     .annotate(interval=Ceil((EpochSeconds("held_at") - start) * scale)).values("interval")
#     .annotate(Count("id"), Sum("amount"))
_CUMULATIVE_SQL = (
    "SELECT CEILING(({held} - %s) * %s), COUNT(*), SUM(amount) FROM {table} "
    "WHERE campaign_id = %s AND held_at <= %s AND status IN ({statuses}) GROUP BY 1"
)
_STATUS_PLACEHOLDERS = ", ".join(["%s"] * len(COUNTED_STATUSES))
_CUMULATIVE_SQL_BY_VENDOR = {
    "postgresql": _CUMULATIVE_SQL.format(
        held="date_part('epoch', held_at)", table=Pledge._meta.db_table, statuses=_STATUS_PLACEHOLDERS
    ),
    "sqlite": _CUMULATIVE_SQL.format(
        held="((julianday(held_at) - 2440587.5) * 86400.0)", table=Pledge._meta.db_table, statuses=_STATUS_PLACEHOLDERS
    ),
}


def pledges_held_per_interval(
    *, campaign_id: int, start: datetime, end: datetime, points: int
) -> tuple[int, list[int]]:
    """Return (pledges held by ``end``, amount held in each of ``points`` intervals from ``start`` to ``end``).

    The times are equally spaced and the last is ``end``. Interval i (1..points) holds the
    pledges with edge(i-1) < held_at <= edge(i); a pledge held at or before the start counts
    from the first point on.

    The database sums the pledges per interval, so a campaign with thousands of pledges sends
    back at most ``points`` rows. The statement is written out rather than built with the ORM
    because building the grouped queryset cost more than running it, against the forecast's
    budget per campaign (the risk app's forecast, ``benchmarks/risk.py``; figures in benchmarks/README.md).
    """
    span = max((end - start).total_seconds(), 1e-9)
    # ``end`` goes through the database's own conversion, as the ORM's would: SQLite stores UTC
    # text, and an aware datetime in another zone compared as given would be hours off.
    held_by = connection.ops.adapt_datetimefield_value(end)
    with connection.cursor() as cursor:
        cursor.execute(
            _CUMULATIVE_SQL_BY_VENDOR[connection.vendor],
            [start.timestamp(), points / span, campaign_id, held_by, *map(str, COUNTED_STATUSES)],
        )
        rows = cursor.fetchall()
    per_interval = [0] * points
    count = 0
    for index, pledges, amount in rows:
        per_interval[min(max(int(index), 1), points) - 1] += amount
        count += pledges
    return count, per_interval

"""The invariants of pledges paid over time, for ``settlement.verification.ledger_verify``.

- a plan's installments sum to its pledge's amount; once a plan ended after a decline, the
  installments paid sum to it (the pledge became what was paid);
- what the pledge does not hold in escrow (``unheld_amount``) is its amount less the
  installments it paid into escrow;
- each paid installment names exactly one ledger transaction, of its amount, under its own key
  (the first: the pledge's hold), and no transaction pays two installments;
- no installment is charged twice: at most one charge of it stands at the gateway (not given
  back), and a paid later installment has exactly one.
"""

from collections import defaultdict

from django.db.models import Count, Q, Sum

from escrow.models import AccountKind, GatewayOperation, LedgerEntry, OperationKind, OperationStatus
from escrow.vocabulary import hold_key
from escrow.vocabulary_installments import (
    INSTALLMENT_CHARGE_KEY_PREFIX,
    installment_hold_key,
    installment_payout_key,
)

from .models import InstallmentPaidTo, InstallmentStatus, Pledge, PledgeInstallment, PledgeStatus

SHOW = 10


def _ids(values) -> str:
    values = sorted(values)
    return ", ".join(str(v) for v in values[:SHOW]) + (", ..." if len(values) > SHOW else "")


def installments_verify() -> list[str]:
    """Return every broken invariant of installment plans as a sentence naming the rows."""
    plans = dict(Pledge.objects.filter(installment_plan=True).values_list("pk", "amount").order_by("pk"))
    if not plans and not PledgeInstallment.objects.exists():
        return []
    problems = []
    sums = PledgeInstallment.objects.values("pledge_id").annotate(
        whole=Sum("amount"),
        paid=Sum("amount", filter=Q(status__in=[InstallmentStatus.PAID, InstallmentStatus.CHARGED]), default=0),
        in_escrow=Sum("amount", filter=Q(status=InstallmentStatus.PAID, paid_to=InstallmentPaidTo.ESCROW), default=0),
        ended=Count("pk", filter=Q(status=InstallmentStatus.FAILED)),
    )
    by_pledge = {row["pledge_id"]: row for row in sums}
    unheld = dict(
        Pledge.objects.filter(installment_plan=True, status__in=[PledgeStatus.HELD, PledgeStatus.RELEASED]).values_list(
            "pk", "unheld_amount"
        )
    )
    wrong_sum, wrong_unheld = [], []
    for pledge_id, amount in plans.items():
        row = by_pledge.get(pledge_id)
        if row is None or (row["paid"] if row["ended"] else row["whole"]) != amount:
            wrong_sum.append(pledge_id)
        elif pledge_id in unheld and unheld[pledge_id] != amount - row["in_escrow"]:
            wrong_unheld.append(pledge_id)
    orphans = set(by_pledge) - set(plans)
    if wrong_sum or orphans:
        problems.append(f"Pledges whose installments do not sum to their amount: {_ids(wrong_sum + list(orphans))}")
    if wrong_unheld:
        problems.append(
            f"Pledges paid over time whose escrow part differs from their paid installments: {_ids(wrong_unheld)}"
        )
    problems += _check_transactions()
    problems += _check_charges()
    return problems


def _check_transactions() -> list[str]:
    paid = list(
        PledgeInstallment.objects.filter(status=InstallmentStatus.PAID).values_list(
            "pk",
            "pledge_id",
            "number",
            "amount",
            "paid_to",
            "ledger_transaction_id",
            "ledger_transaction__idempotency_key",
        )
    )
    taken = defaultdict(int)
    funding = dict(
        LedgerEntry.objects.filter(
            transaction_id__in=[row[5] for row in paid], account__kind=AccountKind.FUNDING_SOURCE
        )
        .values_list("transaction_id")
        .annotate(total=Sum("amount"))
    )
    wrong = []
    for pk, pledge_id, number, amount, paid_to, txn_id, key in paid:
        taken[txn_id] += 1
        if number == 1:
            expected = hold_key(pledge_id)
        elif paid_to == InstallmentPaidTo.ESCROW:
            expected = installment_hold_key(pk)
        else:
            expected = installment_payout_key(pk)
        if key != expected or funding.get(txn_id) != -amount:
            wrong.append(pk)
    problems = []
    if wrong:
        problems.append(f"Paid installments without one ledger transaction of their amount: {_ids(wrong)}")
    shared = [txn for txn, n in taken.items() if n > 1]
    if shared:
        problems.append(f"Ledger transactions paying more than one installment: {_ids(shared)}")
    return problems


def _check_charges() -> list[str]:
    succeeded, standing = defaultdict(int), defaultdict(int)
    for key, amount, refunded in GatewayOperation.objects.filter(
        kind=OperationKind.CHARGE,
        status=OperationStatus.SUCCEEDED,
        idempotency_key__startswith=INSTALLMENT_CHARGE_KEY_PREFIX,
    ).values_list("idempotency_key", "amount", "refunded_amount"):
        pk = int(key.removeprefix(INSTALLMENT_CHARGE_KEY_PREFIX).split(":")[0])
        succeeded[pk] += 1
        if refunded < amount:  # a charge given back (its pledge refunded) no longer stands
            standing[pk] += 1
    twice = [pk for pk, n in standing.items() if n > 1]
    paid_later = set(
        PledgeInstallment.objects.filter(status=InstallmentStatus.PAID, number__gt=1).values_list("pk", flat=True)
    )
    unpaid_charged = [pk for pk in standing if pk not in paid_later and not _in_flight(pk)]
    never_charged = [pk for pk in paid_later if not succeeded[pk]]
    problems = []
    if twice:
        problems.append(f"Installments charged more than once: {_ids(twice)}")
    if never_charged or unpaid_charged:
        disagree = _ids(never_charged + unpaid_charged)
        problems.append(f"Installments whose charges at the gateway disagree with their state: {disagree}")
    return problems


def _in_flight(pk: int) -> bool:
    """A charge being recorded, or of a released pledge's installment being paid out, is not yet paid."""
    return PledgeInstallment.objects.filter(
        pk=pk, status__in=[InstallmentStatus.CHARGING, InstallmentStatus.CHARGED]
    ).exists()

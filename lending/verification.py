"""The lending invariants, checked against the database for ``verify_ledger``.

``lending_verify()`` returns a list of problems (empty when all is well), each naming the
offending rows:

- a loan's schedule principal sums to the loan;
- every repayment's payout lines sum to the repayment minus its servicing fee, and its ledger
  transaction pays each lender exactly their lines and the platform exactly the fee;
- every loan clearing account is zero after each transaction (so after each distribution);
- no lender has received more principal than they lent, and every lender's running totals are
  the sum of their payout lines and within one minor unit of their exact share;
- no lender's balance (what the platform holds for them until they withdraw or lend it again)
  is ever below zero;
- each paid withdrawal's ledger transaction takes exactly its amount out of the lender's
  balance, only paid withdrawals have one, and no lender's pending withdrawals (with their
  pending pledges paid from the balance) exceed their balance (no withdrawal above the balance);
- every card charge on a loan that the gateway took is either a repayment of that loan or given
  back in full (an automatic charge still in flight, with its key on its due-work row, aside):
  a borrower is never charged for nothing, nor an installment charged twice;
- re-lending: a pledge paid partly from its lender's balance took exactly that part from the
  balance in its hold, and (refunded or cancelled) gave exactly that back to the balance in its
  refund, never to a card; no other pledge's hold or refund touches a lender's balance.
"""

from collections import defaultdict

from django.db.models import F, Sum

from escrow.models import (
    GatewayOperation,
    LedgerEntry,
    LedgerTransaction,
    OperationKind,
    OperationStatus,
    TransactionKind,
)
from escrow.vocabulary import (
    LOAN_CHARGE_KEY_PREFIX,
    PLATFORM_REVENUE,
    PLEDGE_REFERENCE_PREFIX,
    REPAYMENT_DISTRIBUTION_KEY_PREFIX,
    WITHDRAWAL_KEY_PREFIX,
    is_loan_clearing_code,
    lender_balance_code,
    loan_clearing_code_filter,
    loan_id_from_clearing_code,
    pledge_id_from_reference,
    repayment_charge_key,
    repayment_distribution_key,
    withdrawal_key,
)
from pledges.models import Pledge, PledgeStatus

from .models import (
    DueWorkKind,
    Installment,
    LenderPayout,
    Loan,
    LoanDueWork,
    LoanLender,
    Repayment,
    Withdrawal,
    WithdrawalStatus,
)

SHOW = 10  # offending rows named per problem


def _ids(rows) -> str:
    rows = list(rows)
    return ", ".join(str(r) for r in rows[:SHOW]) + (", ..." if len(rows) > SHOW else "")


def lending_verify() -> list[str]:
    """Return every broken lending invariant as a sentence naming the offending rows."""
    return (
        _check_schedules()
        + _check_repayments()
        + _check_clearing()
        + _check_lenders()
        + _check_withdrawals()
        + _check_relending()
        + _check_loan_charges()
    )


def _check_schedules() -> list[str]:
    sums = dict(Installment.objects.values_list("loan_id").annotate(total=Sum("principal")))
    wrong = [
        loan_id for loan_id, principal in Loan.objects.values_list("pk", "principal") if sums.get(loan_id) != principal
    ]
    return [f"Loans whose schedule principal differs from the loan: {_ids(wrong)}"] if wrong else []


def _check_repayments() -> list[str]:
    problems = []
    paid_out = dict(LenderPayout.objects.values_list("repayment_id").annotate(total=Sum(F("principal") + F("income"))))
    repayments = list(Repayment.objects.values_list("pk", "amount", "fee", "loan_id"))
    wrong = [pk for pk, amount, fee, _loan in repayments if paid_out.get(pk, 0) != amount - fee]
    if wrong:
        problems.append(f"Repayments whose payouts differ from the repayment minus the fee: {_ids(wrong)}")
    # The ledger side: each repayment's transaction credits each lender their lines and revenue the fee.
    expected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for repayment_id, fee in ((pk, fee) for pk, _amount, fee, _loan in repayments):
        if fee:
            expected[repayment_distribution_key(repayment_id)][PLATFORM_REVENUE] += fee
    for repayment_id, lender_id, amount in LenderPayout.objects.values_list(
        "repayment_id", "share__lender_id", F("principal") + F("income")
    ):
        if amount:
            expected[repayment_distribution_key(repayment_id)][lender_balance_code(lender_id)] += amount
    keys = [repayment_distribution_key(pk) for pk, *_ in repayments]
    posted: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    distributions = {"transaction__idempotency_key__startswith": REPAYMENT_DISTRIBUTION_KEY_PREFIX}
    for key, code, amount in LedgerEntry.objects.filter(amount__gt=0, **distributions).values_list(
        "transaction__idempotency_key", "account__code", "amount"
    ):
        if not is_loan_clearing_code(code):
            posted[key][code] += amount
    missing = set(keys) - set(
        LedgerTransaction.objects.filter(idempotency_key__startswith=REPAYMENT_DISTRIBUTION_KEY_PREFIX).values_list(
            "idempotency_key", flat=True
        )
    )
    differing = sorted(k for k in keys if k not in missing and posted[k] != expected[k])
    if missing:
        problems.append(f"Repayments without their ledger transaction: {_ids(sorted(missing))}")
    if differing:
        problems.append(f"Repayment transactions that differ from their payout lines: {_ids(differing)}")
    return problems


def _check_clearing() -> list[str]:
    per_transaction = (
        LedgerEntry.objects.filter(**{f"account__{k}": v for k, v in loan_clearing_code_filter().items()})
        .values_list("transaction_id", "account__code")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
    )
    wrong = sorted({loan_id_from_clearing_code(code) for _txn, code, _total in per_transaction})
    return [f"Loans whose clearing account kept money after a transaction: {_ids(wrong)}"] if wrong else []


def _check_lenders() -> list[str]:
    problems = []
    over = LoanLender.objects.filter(principal_received__gt=F("principal")).values_list("pk", flat=True)
    if over.exists():
        problems.append(f"Lenders who received more principal than they lent: {_ids(over)}")
    lines = {
        share_id: (principal, income)
        for share_id, principal, income in LenderPayout.objects.values_list("share_id")
        .annotate(principal=Sum("principal"), income=Sum("income"))
        .values_list("share_id", "principal", "income")
    }
    shares = LoanLender.objects.values_list(
        "pk",
        "principal",
        "principal_received",
        "income_received",
        "loan__principal",
        "loan__principal_distributed",
        "loan__income_distributed",
    )
    unsummed, off_share = [], []
    for pk, share, principal_received, income_received, loan, principal_out, income_out in shares:
        if lines.get(pk, (0, 0)) != (principal_received, income_received):
            unsummed.append(pk)
        # Within one unit: |received - distributed * share / loan| < 1, in integers.
        if (
            abs(principal_received * loan - principal_out * share) >= loan
            or abs(income_received * loan - income_out * share) >= loan
        ):
            off_share.append(pk)
    if unsummed:
        problems.append(f"Lenders whose received totals differ from their payout lines: {_ids(unsummed)}")
    if off_share:
        problems.append(f"Lenders more than one unit from their exact share: {_ids(off_share)}")
    negative = (
        LedgerEntry.objects.filter(account__code__startswith="lender:", account__code__endswith=":balance")
        .values_list("account__code", "account__currency")
        .annotate(total=Sum("amount"))
        .filter(total__lt=0)
    )
    if negative:
        problems.append(
            "Lender balances below zero: " + _ids(f"{code} {currency} {total}" for code, currency, total in negative)
        )
    return problems


def _check_withdrawals() -> list[str]:
    problems = []
    # What each withdrawal transaction took out of a lender's balance, by key.
    taken: dict[str, tuple[str, str, int]] = {}
    for key, code, currency, amount in LedgerEntry.objects.filter(
        transaction__idempotency_key__startswith=WITHDRAWAL_KEY_PREFIX,
        account__code__startswith="lender:",
        account__code__endswith=":balance",
    ).values_list("transaction__idempotency_key", "account__code", "account__currency", "amount"):
        prior = taken.get(key, (code, currency, 0))
        taken[key] = (code, currency, prior[2] - amount)
    rows = list(Withdrawal.objects.values_list("pk", "lender_id", "currency", "amount", "status"))
    wrong = []
    for pk, lender_id, currency, amount, status in rows:
        expected = (lender_balance_code(lender_id), currency, amount) if status == WithdrawalStatus.PAID else None
        if taken.pop(withdrawal_key(pk), None) != expected:
            wrong.append(pk)
    if wrong:
        problems.append(f"Withdrawals whose ledger transaction differs from what was paid: {_ids(wrong)}")
    if taken:
        problems.append(f"Withdrawal transactions without their withdrawal: {_ids(sorted(taken))}")
    pending: dict[tuple[str, str], int] = defaultdict(int)
    for lender_id, currency, amount in Withdrawal.objects.filter(status=WithdrawalStatus.PENDING).values_list(
        "lender_id", "currency", "amount"
    ):
        pending[(lender_balance_code(lender_id), currency)] += amount
    # A pending pledge paid from the balance holds its part back just as a pending withdrawal does.
    for lender_id, currency, amount in Pledge.objects.filter(
        status=PledgeStatus.PENDING, from_balance__gt=0
    ).values_list("backer_id", "currency", "from_balance"):
        pending[(lender_balance_code(lender_id), currency)] += amount
    if pending:
        balances = {
            (code, currency): total
            for code, currency, total in LedgerEntry.objects.filter(
                account__code__in=sorted({code for code, _ in pending})
            )
            .values_list("account__code", "account__currency")
            .annotate(total=Sum("amount"))
        }
        over = sorted(
            f"{code} {currency}"
            for (code, currency), held in pending.items()
            if held > balances.get((code, currency), 0)
        )
        if over:
            problems.append(f"Lenders whose pending withdrawals exceed their balance: {_ids(over)}")
    return problems


def _check_relending() -> list[str]:
    # What each pledge's hold took from, and its refund gave back to, a lender's balance.
    posted: dict[tuple[int, str], int] = defaultdict(int)
    for reference, kind, code, amount in LedgerEntry.objects.filter(
        transaction__kind__in=[TransactionKind.HOLD, TransactionKind.REFUND],
        transaction__reference__startswith=PLEDGE_REFERENCE_PREFIX,
        account__code__startswith="lender:",
        account__code__endswith=":balance",
    ).values_list("transaction__reference", "transaction__kind", "account__code", "amount"):
        posted[(pledge_id_from_reference(reference), kind, code)] += amount
    returned = {PledgeStatus.REFUNDED, PledgeStatus.CANCELLED}
    expected: dict[tuple[int, str], int] = {}
    for pk, backer_id, from_balance, status in Pledge.objects.filter(
        from_balance__gt=0, status__in=[PledgeStatus.HELD, PledgeStatus.RELEASED, *returned]
    ).values_list("pk", "backer_id", "from_balance", "status"):
        code = lender_balance_code(backer_id)
        expected[(pk, TransactionKind.HOLD, code)] = -from_balance
        if status in returned:
            expected[(pk, TransactionKind.REFUND, code)] = from_balance
    wrong = sorted({key[0] for key in set(posted) | set(expected) if posted.get(key, 0) != expected.get(key, 0)})
    if wrong:
        return [f"Pledges whose holds or refunds moved other than their part paid from the balance: {_ids(wrong)}"]
    return []


def _check_loan_charges() -> list[str]:
    charges = GatewayOperation.objects.filter(
        kind=OperationKind.CHARGE,
        status=OperationStatus.SUCCEEDED,
        idempotency_key__startswith=LOAN_CHARGE_KEY_PREFIX,
        refunded_amount__lt=F("amount"),
    ).values_list("idempotency_key", "amount")
    recorded = {
        repayment_charge_key(loan_id, key): amount
        for loan_id, key, amount in Repayment.objects.values_list("loan_id", "idempotency_key", "amount")
    }
    in_flight = {
        repayment_charge_key(loan_id, key)
        for loan_id, key in LoanDueWork.objects.filter(kind=DueWorkKind.CHARGE, done_at__isnull=True)
        .exclude(pending_key="")
        .values_list("installment__loan_id", "pending_key")
    }
    wrong = sorted(key for key, amount in charges if recorded.get(key) != amount and key not in in_flight)
    if wrong:
        return [f"Card charges on loans neither recorded as a repayment nor given back: {_ids(wrong)}"]
    return []

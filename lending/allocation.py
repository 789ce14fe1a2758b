"""Exact splits of loan money: repayments over installments, payouts over lenders.

Pure functions on integer minor units; no database.

**Payouts to lenders** are cumulative. A loan's lenders lent ``shares`` (their principal); each
kind of money paid out (principal; interest and late fees) is tracked as a running total
``distributed`` and a per-lender running total ``paid``. After every repayment each lender's
running total is the floor or the ceiling of their exact share ``distributed * share / loan``
(so within one minor unit of it), never goes down, and the running totals sum to
``distributed`` exactly. For principal this also means no lender ever receives more principal
than they lent: at most ``distributed <= loan``, so the ceiling is at most their share.

Plain largest remainder on the running total can take a unit back from a lender when the total
grows (the Alabama paradox). :func:`distribution_step` avoids that: every lender first keeps what
they have or rises to their new floor, and the units left over go, one each, to the lenders at
their floor whose next whole unit falls due soonest (the smallest ``(floor + 1) / share``). That
is earliest-deadline-first scheduling of every lender's whole units, which never misses one.
"""

import datetime
from dataclasses import dataclass
from functools import cmp_to_key


def distribution_step(*, shares: list[int], paid: list[int], distributed: int) -> list[int]:
    """Return what each lender receives now so that, in all, ``distributed`` has been paid out.

    ``paid`` is what each lender received so far (from earlier calls with the same ``shares``);
    the result is non-negative per lender and sums to ``distributed - sum(paid)``.
    Raise ValueError if the arguments are not a state this function produces.
    """
    if not shares or any(s <= 0 for s in shares):
        raise ValueError("every lender needs a positive share")
    if len(paid) != len(shares):
        raise ValueError("paid and shares differ in length")
    loan = sum(shares)
    if not 0 <= sum(paid) <= distributed:
        raise ValueError("the running total cannot go down")
    floors = [distributed * s // loan for s in shares]
    target = [max(f, p) for f, p in zip(floors, paid, strict=True)]
    left_over = distributed - sum(target)
    ceilings = [-(-distributed * s // loan) for s in shares]
    if left_over < 0 or any(p > c for p, c in zip(paid, ceilings, strict=True)):
        raise ValueError("paid is not within one unit of the lenders' shares")
    if left_over:
        candidates = [i for i, s in enumerate(shares) if target[i] == floors[i] and distributed * s % loan]

        def due_sooner(i: int, j: int) -> int:
            # (floors[i] + 1) / shares[i] against (floors[j] + 1) / shares[j], exactly; then lender order.
            return (floors[i] + 1) * shares[j] - (floors[j] + 1) * shares[i] or i - j

        candidates.sort(key=cmp_to_key(due_sooner))
        for i in candidates[:left_over]:
            target[i] += 1
    return [t - p for t, p in zip(target, paid, strict=True)]


@dataclass
class InstallmentDue:
    """What is still owed of one installment, oldest first; amounts in minor units."""

    late_fee: int = 0
    fee: int = 0
    interest: int = 0
    principal: int = 0

    @property
    def total(self) -> int:
        return self.late_fee + self.fee + self.interest + self.principal


@dataclass(frozen=True)
class Application:
    """How much of a repayment went to each part of one installment (by index in the list given)."""

    index: int
    late_fee: int
    fee: int
    interest: int
    principal: int

    @property
    def total(self) -> int:
        return self.late_fee + self.fee + self.interest + self.principal


def repayment_apply(*, amount: int, dues: list[InstallmentDue]) -> list[Application]:
    """Return how ``amount`` pays ``dues`` (oldest first): late fee, fee, interest, principal, per installment.

    The applications sum to ``amount``. Raise ValueError if ``amount`` is not positive or is
    more than everything owed (the service turns that into a clear message first).
    """
    if amount <= 0:
        raise ValueError("amount must be positive")
    if amount > sum(d.total for d in dues):
        raise ValueError("amount is more than is owed")
    left = amount
    applications = []
    for index, due in enumerate(dues):
        if not left:
            break
        parts = {}
        for part in ("late_fee", "fee", "interest", "principal"):
            parts[part] = min(left, getattr(due, part))
            left -= parts[part]
        application = Application(index=index, **parts)
        if application.total:
            applications.append(application)
    return applications


def xirr(flows: list[tuple[datetime.date, int]]) -> float | None:
    """Return the annual rate at which ``flows`` (date, signed amount) are worth nothing today, or None.

    The lender's realised return: what they lent (negative) and received (positive), by date. A
    rate is a ratio, not money, so it is found in floating point (bisection between -99.99 % and
    +1,000 % a year); None when there is no such rate (nothing received yet, or no sign change).
    """
    if not flows or all(amount >= 0 for _, amount in flows) or all(amount <= 0 for _, amount in flows):
        return None
    start = min(day for day, _ in flows)

    def value(rate: float) -> float:
        return sum(amount / (1 + rate) ** ((day - start).days / 365) for day, amount in flows)

    low, high = -0.9999, 10.0
    if value(low) * value(high) > 0:
        return None
    for _ in range(200):
        middle = (low + high) / 2
        if value(low) * value(middle) <= 0:
            high = middle
        else:
            low = middle
    return (low + high) / 2

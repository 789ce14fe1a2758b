"""The time-driven work rows an installment gets with its schedule (done by ``collections``)."""

import datetime

from django.utils import timezone

from ..models import DueWorkKind, Installment, LoanDueWork

REMINDER_DAYS = {DueWorkKind.REMINDER_7_DAYS: 7, DueWorkKind.REMINDER_1_DAY: 1}


def _start_of(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=timezone.get_current_timezone())


def due_work_for(installments: list[Installment]) -> list[LoanDueWork]:
    """Return the unsaved reminder and charge rows of new installments (``loan_create`` stores them)."""
    rows = []
    for installment in installments:
        for kind, days in REMINDER_DAYS.items():
            due_at = _start_of(installment.due_date - datetime.timedelta(days=days))
            rows.append(LoanDueWork(installment=installment, kind=kind, due_at=due_at))
        rows.append(
            LoanDueWork(installment=installment, kind=DueWorkKind.CHARGE, due_at=_start_of(installment.due_date))
        )
    return rows

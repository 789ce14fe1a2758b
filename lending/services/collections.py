"""Time-driven collection of installments: reminders, the automatic charge on the due date, retries.

Each installment gets three rows of ``LoanDueWork`` with the schedule: a reminder 7 days and
1 day before its due date, and the charge of the borrower's saved payment method on it. A
failed charge is retried ``LENDING_AUTOPAY_RETRY_DAYS`` later (each a new row-driven attempt)
and tells the borrower at once. ``loans_run_due_work`` is what beat runs: it claims due rows
with ``select_for_update(skip_locked=True)``, one short transaction each, so two workers never do
the same row, and marks each done, so a run repeated does nothing twice.
"""

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.emails import emails_send_once
from accounts.services import audit_record
from crowdfund_site.bounds import field_max_length
from crowdfund_site.exceptions import (
    ApplicationError,
    Conflict,
    InvalidInput,
    NotAllowed,
    PaymentDeclined,
    PaymentUnavailable,
)
from escrow.gateway import get_gateway
from escrow.vocabulary import autopay_repayment_key, repayment_charge_key

from ..models import PAYABLE_STATUSES, DueWorkKind, Loan, LoanDueWork
from .due_work import REMINDER_DAYS
from .repayments import loan_repay_by_card

# A charge in flight is retried with the same key after this long if its worker never finished it.
CHARGE_LEASE = datetime.timedelta(minutes=10)


@transaction.atomic
def loan_autopay_set(*, loan: Loan, actor, payment_token: str) -> Loan:
    """Save the borrower's payment method to be charged on each due date (blank stops it); return the loan.

    From then on each installment's charge row (made with the schedule) charges it on its due
    date, once (``loans_run_due_work``); turning it off stops charges not yet begun, and one
    already at the gateway is recorded only if the gateway took it. Audited (never the token).
    Locks the loan row. Raises NotAllowed for anyone but the borrower, InvalidInput for a token
    longer than a payment method's, and Conflict for a loan that takes no more payments.
    """
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    if actor is None or actor.pk != loan.borrower_id:
        raise NotAllowed(_("Only the borrower repays this loan."), code="not_borrower")
    token = (payment_token or "").strip()
    if len(token) > field_max_length(Loan, "autopay_token"):
        raise InvalidInput(_("Choose a payment method."), code="invalid_payment_token", field="payment_token")
    if token and loan.status not in PAYABLE_STATUSES:
        raise Conflict(
            _("This loan is %(status)s and takes no more payments.") % {"status": loan.get_status_display().lower()},
            code="loan_not_payable",
        )
    was_on = bool(loan.autopay_token)
    loan.autopay_token = token
    loan.save(update_fields=["autopay_token"])
    if was_on != bool(token):
        audit_record(actor=actor, action="loan_autopay_on" if token else "loan_autopay_off", obj=loan)
    return loan


def loans_run_due_work(*, now: datetime.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Do the due reminders, charges and notices, oldest first, at most ``limit``; return counts.

    Harmless to run twice or in two workers at once (see the module). Reminders and notices go
    out once (``emails_send_once``) and only while something is owed on a loan that takes
    payments. A charge pays everything due by its date; a decline is retried up to
    ``LENDING_AUTOPAY_ATTEMPTS`` times; a gateway that does not answer is retried with the same key.
    """
    now = now or timezone.now()
    counts = {"reminders": 0, "charged": 0, "declined": 0, "notices": 0, "skipped": 0}
    ids = list(
        LoanDueWork.objects.filter(done_at__isnull=True, due_at__lte=now)
        .order_by("due_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    for work_id in ids:
        outcome = _due_work_run(work_id=work_id, now=now)
        if outcome:
            counts[outcome] += 1
    return counts


def _claim(work_id: int, now: datetime.datetime) -> LoanDueWork | None:
    return (
        LoanDueWork.objects.select_for_update(skip_locked=True)
        .select_related("installment__loan__borrower")
        .filter(pk=work_id, done_at__isnull=True, due_at__lte=now)
        .first()
    )


def _charge_taken(loan: Loan, repayment_key: str) -> bool:
    """Return whether the gateway took the card charge of ``repayment_key`` (asked only for one in flight)."""
    result = get_gateway().find_operation(idempotency_key=repayment_charge_key(loan.pk, repayment_key))
    return result is not None and result.ok


def _owed_by(loan: Loan, day: datetime.date) -> int:
    return sum(i.owed for i in loan.installments.filter(due_date__lte=day, paid_at__isnull=True))


def _due_work_run(*, work_id: int, now: datetime.datetime) -> str | None:
    with transaction.atomic():
        work = _claim(work_id, now)
        if work is None:
            return None
        installment = work.installment
        loan = installment.loan
        # A reminder that a worker outage left until the due date has nothing left to remind of.
        stale = work.kind in REMINDER_DAYS and timezone.localdate(now) >= installment.due_date
        # A charge in flight is finished even so: if the gateway took it, the refusal gives it back.
        in_flight = work.kind == DueWorkKind.CHARGE and work.pending_key
        if not in_flight and (loan.status not in PAYABLE_STATUSES or not installment.owed or stale):
            work.done_at = now
            work.save(update_fields=["done_at"])
            return "skipped"
        if work.kind != DueWorkKind.CHARGE:
            _notice_send(work=work, now=now)
            return "notices" if work.kind == DueWorkKind.CHARGE_FAILED_NOTICE else "reminders"
        if not loan.autopay_token and not work.pending_key:
            work.done_at = now
            work.save(update_fields=["done_at"])
            return "skipped"
        if not work.pending_key:
            work.attempt += 1
            work.pending_key = autopay_repayment_key(installment.pk, work.attempt)
            work.pending_amount = _owed_by(loan, timezone.localdate(now))
        work.due_at = now + CHARGE_LEASE  # the lease: nobody else takes it while this charge runs
        work.save(update_fields=["attempt", "pending_key", "pending_amount", "due_at"])
    # The gateway is called outside any row lock; its key makes a retry charge nothing twice.
    if not loan.autopay_token and not _charge_taken(loan, work.pending_key):
        # Autopay was turned off while this charge was in flight, and the gateway never took it.
        LoanDueWork.objects.filter(pk=work.pk).update(done_at=now, pending_key="", pending_amount=0)
        return "skipped"
    try:
        loan_repay_by_card(
            loan=loan,
            actor=loan.borrower,
            amount=work.pending_amount,
            payment_token=loan.autopay_token,
            idempotency_key=work.pending_key,
            # An automatic charge pays what is due, never ahead: if less is due now, it goes back.
            due_by=timezone.localdate(now),
        )
    except PaymentUnavailable:
        return None  # the lease runs out and the same key is tried again
    except PaymentDeclined as decline:
        _charge_declined(work_id=work.pk, now=now, message=decline.message)
        return "declined"
    except ApplicationError as refusal:
        # Less is owed than when the attempt began (the borrower paid meanwhile): start afresh.
        _charge_restart(work_id=work.pk, now=now, message=refusal.message)
        return None
    LoanDueWork.objects.filter(pk=work.pk).update(done_at=now, pending_key="", last_error="")
    return "charged"


@transaction.atomic
def _charge_declined(*, work_id: int, now: datetime.datetime, message: str) -> None:
    work = LoanDueWork.objects.select_for_update().get(pk=work_id)
    work.pending_key, work.pending_amount, work.last_error = "", 0, message[:255]
    if work.attempt >= settings.LENDING_AUTOPAY_ATTEMPTS:
        work.done_at = now  # the late-loan assessment takes over from here
    else:
        work.due_at = now + datetime.timedelta(days=settings.LENDING_AUTOPAY_RETRY_DAYS)
    work.save(update_fields=["pending_key", "pending_amount", "last_error", "done_at", "due_at"])
    LoanDueWork.objects.get_or_create(
        installment_id=work.installment_id,
        kind=DueWorkKind.CHARGE_FAILED_NOTICE,
        attempt=work.attempt,
        defaults={"due_at": now, "last_error": message[:255]},
    )


@transaction.atomic
def _charge_restart(*, work_id: int, now: datetime.datetime, message: str) -> None:
    LoanDueWork.objects.filter(pk=work_id).update(
        pending_key="", pending_amount=0, due_at=now, last_error=message[:255]
    )


def _notice_send(*, work: LoanDueWork, now: datetime.datetime) -> None:
    """Send a reminder or failure notice to the borrower (once, by the row's id) and mark the row done."""
    installment = work.installment
    loan = installment.loan
    context = {
        "loan": loan,
        "campaign_title": loan.campaign.title,
        "installment": installment,
        "days": REMINDER_DAYS.get(work.kind, 0),
        "owed": installment.owed,
        "autopay": bool(loan.autopay_token),
        "error": work.last_error,
        "retry": work.attempt < settings.LENDING_AUTOPAY_ATTEMPTS,
    }
    template = "loan_charge_failed" if work.kind == DueWorkKind.CHARGE_FAILED_NOTICE else "loan_reminder"
    emails_send_once(template=template, object_id=work.pk, recipients=[(loan.borrower, context)])
    work.done_at = now
    work.save(update_fields=["done_at"])

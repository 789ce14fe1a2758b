"""Beat's collection of installments: reminders 7 days and 1 day before, the charge on the due date, retries."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from lending.models import DueWorkKind, LoanDueWork, LoanStatus, Repayment
from lending.services import loan_autopay_set, loans_run_due_work
from settlement.verification import ledger_verify

from .factories import loan_funded

pytestmark = pytest.mark.django_db


def _at(day: datetime.date, hour: int = 1) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=timezone.get_current_timezone())


VISA = "tok_visa"  # the sandbox's card that always works


def _loan(token: str = VISA, amounts=(60_000, 40_000)):
    loan = loan_funded(amounts=list(amounts), term_months=3)
    loan_autopay_set(loan=loan, actor=loan.borrower, payment_token=token)
    return loan


def test_every_installment_gets_two_reminders_and_a_charge():
    loan = _loan()

    kinds = sorted(LoanDueWork.objects.filter(installment__loan=loan).values_list("kind", flat=True))

    assert kinds == sorted([DueWorkKind.REMINDER_7_DAYS, DueWorkKind.REMINDER_1_DAY, DueWorkKind.CHARGE] * 3)


def test_reminders_go_out_7_days_and_1_day_before_once_each():
    loan = _loan()
    first = loan.installments.get(number=1)

    assert loans_run_due_work(now=_at(first.due_date - datetime.timedelta(days=8)))["reminders"] == 0
    assert loans_run_due_work(now=_at(first.due_date - datetime.timedelta(days=7)))["reminders"] == 1
    assert loans_run_due_work(now=_at(first.due_date - datetime.timedelta(days=7), 5))["reminders"] == 0
    assert loans_run_due_work(now=_at(first.due_date - datetime.timedelta(days=1)))["reminders"] == 1

    assert [m.to for m in mail.outbox] == [[loan.borrower.email]] * 2
    assert "due in 7 days" in mail.outbox[0].subject
    assert "due tomorrow" in mail.outbox[1].subject
    assert "We will charge your saved payment method on that day" in mail.outbox[1].body


def test_the_due_date_charges_the_saved_card_once_and_pays_the_lenders():
    loan = _loan()
    first = loan.installments.get(number=1)
    due_day = _at(first.due_date)

    counts = loans_run_due_work(now=due_day)
    again = loans_run_due_work(now=due_day + datetime.timedelta(hours=1))

    assert counts["charged"] == 1
    assert again["charged"] == 0
    first.refresh_from_db()
    assert first.owed == 0
    repayment = Repayment.objects.get(loan=loan)
    assert repayment.amount == first.total
    assert sum(p.amount for p in repayment.payouts.all()) == repayment.amount - repayment.fee
    assert ledger_verify() == []


def test_a_declined_card_is_retried_with_a_notice_each_time_then_left_to_the_late_rules(settings):
    settings.LENDING_AUTOPAY_ATTEMPTS = 2
    settings.LENDING_AUTOPAY_RETRY_DAYS = 3
    loan = _loan(token="tok_chargeDeclined")
    first = loan.installments.get(number=1)
    day = _at(first.due_date)

    assert loans_run_due_work(now=day)["declined"] == 1
    assert loans_run_due_work(now=day)["notices"] == 1
    assert loans_run_due_work(now=day + datetime.timedelta(days=2))["declined"] == 0
    assert loans_run_due_work(now=day + datetime.timedelta(days=3))["declined"] == 1
    assert loans_run_due_work(now=day + datetime.timedelta(days=3))["notices"] == 1
    assert loans_run_due_work(now=day + datetime.timedelta(days=20))["declined"] == 0  # before the next due date

    failures = [m for m in mail.outbox if "could not charge" in m.subject]
    assert len(failures) == 2
    assert "We will try again in a few days" in failures[0].body
    assert "We will not try again" in failures[1].body
    assert not Repayment.objects.filter(loan=loan).exists()
    charge = LoanDueWork.objects.get(installment=first, kind=DueWorkKind.CHARGE)
    assert (charge.attempt, charge.done_at is not None) == (2, True)


def test_nothing_is_charged_or_reminded_for_an_installment_already_paid_or_without_a_saved_card():
    from lending.services import loan_repay

    loan = _loan()
    first = loan.installments.get(number=1)
    loan_repay(loan=loan, actor=loan.borrower, amount=first.total, idempotency_key="by-hand")
    manual = loan_funded(amounts=[10_000], term_months=2)  # no saved payment method

    counts = loans_run_due_work(now=_at(first.due_date))

    assert counts["charged"] == 0
    assert Repayment.objects.filter(loan=loan).count() == 1
    assert not Repayment.objects.filter(loan=manual).exists()
    assert mail.outbox == []


def test_a_charge_whose_worker_died_is_finished_with_the_same_key(settings):
    loan = _loan()
    first = loan.installments.get(number=1)
    day = _at(first.due_date)
    # A worker claimed the charge and died before the gateway answered: the lease is set.
    work = LoanDueWork.objects.get(installment=first, kind=DueWorkKind.CHARGE)
    work.attempt, work.pending_key, work.pending_amount = 1, f"autopay:installment:{first.pk}:1", first.total
    work.due_at = day + datetime.timedelta(minutes=10)
    work.save()

    assert loans_run_due_work(now=day + datetime.timedelta(minutes=5))["charged"] == 0
    assert loans_run_due_work(now=day + datetime.timedelta(minutes=11))["charged"] == 1

    assert Repayment.objects.get(loan=loan).idempotency_key == f"autopay:installment:{first.pk}:1"
    loan.refresh_from_db()
    assert loan.status == LoanStatus.REPAYING


def test_only_the_borrower_saves_a_payment_method():
    from accounts.tests.factories import UserFactory
    from crowdfund_site.exceptions import NotAllowed

    loan = loan_funded(amounts=[10_000])
    with pytest.raises(NotAllowed):
        loan_autopay_set(loan=loan, actor=UserFactory(), payment_token="tok_visa")
    loan.refresh_from_db()
    assert loan.autopay_token == ""

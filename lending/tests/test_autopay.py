"""Automatic repayment: the borrower's page and API turn it on and off; each installment is charged once."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from escrow.gateway import get_gateway
from escrow.models import GatewayOperation, OperationKind
from escrow.vocabulary import autopay_repayment_key, repayment_charge_key
from lending.models import DueWorkKind, Loan, LoanDueWork, LoanStatus, Repayment
from lending.services import loan_autopay_set, loan_pay_off, loan_repay, loans_run_due_work
from lending.verification import lending_verify
from settlement.verification import ledger_verify

from .factories import loan_funded

pytestmark = pytest.mark.django_db

VISA = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"


def _at(day: datetime.date, hour: int = 1) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=timezone.get_current_timezone())


def _page(client, loan) -> str:
    return client.get(f"/loans/borrowed/{loan.pk}/").content.decode()


def test_the_borrower_turns_automatic_repayment_on_and_off_on_their_loan_page(client):
    loan = loan_funded(amounts=[60_000, 40_000], term_months=3)
    client.force_login(loan.borrower)
    assert "Off: you pay each installment yourself" in _page(client, loan)
    assert f'href="/loans/borrowed/{loan.pk}/"' in client.get("/loans/").content.decode()

    on = client.post(f"/loans/borrowed/{loan.pk}/autopay/", {"autopay": "on", "card_number": VISA}, follow=True)

    assert on.status_code == 200
    assert "Automatic repayment is on" in on.content.decode()
    assert "charged to your card ending in 4242 on its due date" in on.content.decode()
    loan.refresh_from_db()
    assert loan.autopay_token == "tok_visa"

    off = client.post(f"/loans/borrowed/{loan.pk}/autopay/", {"autopay": "off"}, follow=True)

    assert "Automatic repayment is off" in off.content.decode()
    loan.refresh_from_db()
    assert loan.autopay_token == ""
    actions = list(
        AuditEvent.objects.filter(object_type="lending.Loan", object_id=str(loan.pk))
        .order_by("id")
        .values_list("action", "actor")
    )
    assert actions == [("loan_autopay_on", loan.borrower.pk), ("loan_autopay_off", loan.borrower.pk)]


def test_a_card_that_is_not_a_test_card_is_refused_with_a_message_and_nothing_saved(client):
    loan = loan_funded(amounts=[10_000], term_months=3)
    client.force_login(loan.borrower)

    response = client.post(f"/loans/borrowed/{loan.pk}/autopay/", {"autopay": "on", "card_number": "1234 5678"})

    assert response.status_code == 400
    assert "Use one of the test cards listed below" in response.content.decode()
    loan.refresh_from_db()
    assert loan.autopay_token == ""


def test_nobody_but_the_borrower_sees_or_changes_the_loan_page(client):
    loan = loan_funded(amounts=[10_000], term_months=3)
    client.force_login(UserFactory())

    assert client.get(f"/loans/borrowed/{loan.pk}/").status_code == 404
    response = client.post(f"/loans/borrowed/{loan.pk}/autopay/", {"autopay": "on", "card_number": VISA})

    assert response.status_code == 404
    loan.refresh_from_db()
    assert loan.autopay_token == ""


def test_a_declined_automatic_charge_is_listed_on_the_page_with_its_next_try_and_mailed(client, settings):
    settings.LENDING_AUTOPAY_RETRY_DAYS = 3
    loan = loan_funded(amounts=[10_000], term_months=3)
    client.force_login(loan.borrower)
    client.post(f"/loans/borrowed/{loan.pk}/autopay/", {"autopay": "on", "card_number": DECLINED})
    first = loan.installments.get(number=1)

    loans_run_due_work(now=_at(first.due_date))
    loans_run_due_work(now=_at(first.due_date))  # the notice

    page = _page(client, loan)
    assert "Charges that failed" in page
    assert "The card was declined." in page
    retry = (first.due_date + datetime.timedelta(days=3)).isoformat()
    assert f'<time datetime="{retry}' in page
    assert [m.to for m in mail.outbox if "could not charge" in m.subject] == [[loan.borrower.email]]
    assert not Repayment.objects.filter(loan=loan).exists()


def test_each_installment_is_charged_once_on_its_due_date_and_the_page_shows_it_paid(client):
    loan = loan_funded(amounts=[70_001, 29_999], term_months=3)
    loan_autopay_set(loan=loan, actor=loan.borrower, payment_token="tok_visa")
    installments = list(loan.installments.order_by("number"))

    for installment in installments:
        for hour in (1, 2, 5):  # beat runs several times a day
            loans_run_due_work(now=_at(installment.due_date, hour))

    keys = sorted(Repayment.objects.filter(loan=loan).values_list("idempotency_key", flat=True))
    assert keys == sorted(autopay_repayment_key(i.pk, 1) for i in installments)
    assert (
        GatewayOperation.objects.filter(kind=OperationKind.CHARGE, idempotency_key__startswith="charge:loan:").count()
        == 3
    )
    loan.refresh_from_db()
    assert loan.status == LoanStatus.REPAID
    client.force_login(loan.borrower)
    page = _page(client, loan)
    assert page.count(">Paid</td>") == 3
    assert ledger_verify() == []


def test_a_charge_taken_before_its_worker_died_is_given_back_when_the_borrower_paid_meanwhile():
    loan = loan_funded(amounts=[10_000], term_months=3)
    loan_autopay_set(loan=loan, actor=loan.borrower, payment_token="tok_visa")
    first = loan.installments.get(number=1)
    day = _at(first.due_date)
    # A worker claimed the charge, the gateway took the card, and the worker died before recording it.
    key = autopay_repayment_key(first.pk, 1)
    LoanDueWork.objects.filter(installment=first, kind=DueWorkKind.CHARGE).update(
        attempt=1, pending_key=key, pending_amount=first.total, due_at=day + datetime.timedelta(minutes=10)
    )
    charge = get_gateway().charge(
        idempotency_key=repayment_charge_key(loan.pk, key), amount=first.total, currency="USD", token="tok_visa"
    )
    assert charge.ok
    assert lending_verify() == []  # in flight: not yet a problem
    loan_repay(loan=loan, actor=loan.borrower, amount=first.total, idempotency_key="by-hand")

    loans_run_due_work(now=day + datetime.timedelta(minutes=11))
    loans_run_due_work(now=day + datetime.timedelta(minutes=12))

    assert list(Repayment.objects.filter(loan=loan).values_list("idempotency_key", flat=True)) == ["by-hand"]
    taken = GatewayOperation.objects.get(idempotency_key=repayment_charge_key(loan.pk, key))
    assert taken.refunded_amount == first.total
    assert LoanDueWork.objects.get(installment=first, kind=DueWorkKind.CHARGE).done_at is not None
    assert ledger_verify() == []


def test_turning_autopay_off_mid_charge_records_a_charge_the_gateway_took_and_starts_none():
    taken_loan = loan_funded(amounts=[10_000], term_months=3)
    untouched_loan = loan_funded(amounts=[20_000], term_months=3)
    day = None
    for loan, charged in ((taken_loan, True), (untouched_loan, False)):
        loan_autopay_set(loan=loan, actor=loan.borrower, payment_token="tok_visa")
        first = loan.installments.get(number=1)
        day = _at(first.due_date)
        key = autopay_repayment_key(first.pk, 1)
        LoanDueWork.objects.filter(installment=first, kind=DueWorkKind.CHARGE).update(
            attempt=1, pending_key=key, pending_amount=first.total, due_at=day
        )
        if charged:
            get_gateway().charge(
                idempotency_key=repayment_charge_key(loan.pk, key), amount=first.total, currency="USD", token="tok_visa"
            )
        loan_autopay_set(loan=loan, actor=loan.borrower, payment_token="")

    loans_run_due_work(now=day)

    assert Repayment.objects.filter(loan=taken_loan).count() == 1
    assert not Repayment.objects.filter(loan=untouched_loan).exists()
    assert not GatewayOperation.objects.filter(idempotency_key__startswith=f"charge:loan:{untouched_loan.pk}:").exists()
    assert ledger_verify() == []


def test_verify_ledger_names_a_loan_charge_neither_recorded_nor_given_back():
    loan = loan_funded(amounts=[10_000], term_months=3)
    key = repayment_charge_key(loan.pk, "lost")
    get_gateway().charge(idempotency_key=key, amount=500, currency="USD", token="tok_visa")

    assert lending_verify() == [f"Card charges on loans neither recorded as a repayment nor given back: {key}"]


# --- API ---------------------------------------------------------------------------------------


def test_the_api_turns_autopay_on_and_off():
    loan = loan_funded(amounts=[10_000], term_months=3)
    client = api_client(loan.borrower)

    on = client.put(f"/api/v1/loans/{loan.pk}/autopay/", {"payment_token": "tok_visa"}, format="json")
    assert on.status_code == 200, on.content
    assert on.json() == {"loan": loan.pk, "autopay": True, "status": "repaying"}
    assert Loan.objects.get(pk=loan.pk).autopay_token == "tok_visa"

    off = client.delete(f"/api/v1/loans/{loan.pk}/autopay/")
    assert off.status_code == 200
    assert off.json()["autopay"] is False
    assert Loan.objects.get(pk=loan.pk).autopay_token == ""


def test_the_api_refuses_bad_autopay_requests_and_changes_nothing():
    loan = loan_funded(amounts=[10_000], term_months=3)
    borrower = api_client(loan.borrower)
    url = f"/api/v1/loans/{loan.pk}/autopay/"

    assert_error(borrower.put(url, {"payment_token": "  "}, format="json"), 400)
    assert_error(borrower.put(url, {"payment_token": 42}, format="json"), 400)
    assert_error(borrower.put(url, {}, format="json"), 400)
    assert_error(api_client(UserFactory()).put(url, {"payment_token": "tok_visa"}, format="json"), 404)
    assert_error(api_client(UserFactory()).delete(url), 404)
    assert Loan.objects.get(pk=loan.pk).autopay_token == ""

    loan_pay_off(loan=loan, actor=loan.borrower, today=timezone.localdate(), idempotency_key="all")
    assert_error(borrower.put(url, {"payment_token": "tok_visa"}, format="json"), 409, "loan_not_payable")
    assert Loan.objects.get(pk=loan.pk).autopay_token == ""

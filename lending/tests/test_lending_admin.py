"""Loans in the admin: read-only pages, and write-off through the audited service."""

import pytest

from accounts.models import AuditEvent
from accounts.tests.factories import StaffFactory
from lending.models import LoanStatus
from settlement.verification import ledger_verify

from .factories import loan_funded

pytestmark = pytest.mark.django_db


def test_staff_see_a_loan_with_its_schedule_and_write_it_off_with_a_reason(client):
    loan = loan_funded(amounts=[10_000, 5_000])
    loan.status = LoanStatus.LATE
    loan.save(update_fields=["status"])
    client.force_login(StaffFactory())

    assert client.get("/admin/lending/loan/").status_code == 200
    page = client.get(f"/admin/lending/loan/{loan.pk}/change/")
    assert page.status_code == 200
    assert b"Installment" in page.content
    response = client.post(
        "/admin/lending/loan/",
        {"action": "write_off", "_selected_action": [loan.pk], "apply": "1", "reason": "Borrower vanished"},
    )

    assert response.status_code == 302
    loan.refresh_from_db()
    assert loan.status == LoanStatus.WRITTEN_OFF
    assert AuditEvent.objects.get(action="loan_write_off").reason == "Borrower vanished"


def test_staff_see_the_due_work_and_lenders_declarations_read_only(client):
    from lending.services import lender_profile_update

    loan = loan_funded(amounts=[10_000])
    lender_profile_update(user=loan.borrower, accredited=False, currency="USD", annual_income=1, net_worth=2)
    client.force_login(StaffFactory())

    for model in ("loanduework", "lenderprofile", "lenderdeclaration", "lendingconsent"):
        assert client.get(f"/admin/lending/{model}/").status_code == 200
    page = client.get("/admin/lending/loanduework/", {"kind": "reminder_7d"}).content.decode()
    assert page.count("Reminder 7 days before") >= 12  # one per installment of the 12-month loan


def _recovery_staff():
    from django.contrib.auth.models import Permission

    from accounts.tests.factories import FinanceFactory

    staff = FinanceFactory()
    # The Finance group does not carry the loan permissions yet (accounts.roles); given here.
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="lending", codename__in=["view_loan", "manage_loans"])
    )
    return staff


def test_finance_staff_record_an_offline_recovery_on_a_late_loan_once_and_the_lenders_are_paid(client):
    loan = loan_funded(amounts=[10_000, 5_000])
    loan.status = LoanStatus.LATE
    loan.save(update_fields=["status"])
    client.force_login(_recovery_staff())

    form_page = client.post("/admin/lending/loan/", {"action": "record_recovery", "_selected_action": [loan.pk]})
    assert form_page.status_code == 200
    key = form_page.context["form"].initial["idempotency_key"]
    submit = {
        "action": "record_recovery",
        "_selected_action": [loan.pk],
        "apply": "1",
        "amount": "30.00",
        "reason": "Collected by the agency",
        "idempotency_key": key,
    }
    assert client.post("/admin/lending/loan/", submit).status_code == 302
    assert client.post("/admin/lending/loan/", submit).status_code == 302  # a resubmit records nothing more

    recovery = loan.repayments.get()
    assert recovery.kind == "recovery"
    assert recovery.amount == 3_000
    assert sum(p.principal + p.income for p in recovery.payouts.all()) == 3_000 - recovery.fee
    event = AuditEvent.objects.get(action="loan_repay")
    assert event.reason == "Collected by the agency"
    assert ledger_verify() == []


def test_a_recovery_with_a_bad_amount_or_on_a_loan_not_behind_is_refused_and_changes_nothing(client):
    loan = loan_funded(amounts=[10_000])
    loan.status = LoanStatus.LATE
    loan.save(update_fields=["status"])
    client.force_login(_recovery_staff())
    submit = {
        "action": "record_recovery",
        "_selected_action": [loan.pk],
        "apply": "1",
        "reason": "agency",
        "idempotency_key": "k1",
    }

    for amount in ("12,5", "-3", "abc", "999999.00"):
        page = client.post("/admin/lending/loan/", {**submit, "amount": amount})
        assert page.status_code == 200
        assert page.context["form"].errors
    loan.status = LoanStatus.REPAYING
    loan.save(update_fields=["status"])
    page = client.post("/admin/lending/loan/", {**submit, "amount": "10.00"})
    assert page.status_code == 200
    assert "late or defaulted" in page.content.decode()
    assert not loan.repayments.exists()
    assert AuditEvent.objects.filter(action="loan_recovery_record", outcome="refused").count() == 5


def test_staff_without_loan_permission_get_no_recovery_action(client):
    from accounts.tests.factories import FinanceFactory

    loan = loan_funded(amounts=[10_000])
    client.force_login(FinanceFactory())
    response = client.post(
        "/admin/lending/loan/",
        {"action": "record_recovery", "_selected_action": [loan.pk], "apply": "1", "amount": "1", "reason": "x"},
    )
    assert not loan.repayments.exists()
    assert response.status_code in (200, 302, 403)

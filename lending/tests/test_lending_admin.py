"""Loans in the admin: read-only pages, and write-off through the audited service."""

import pytest

from accounts.models import AuditEvent
from accounts.tests.factories import StaffFactory
from lending.models import LoanStatus

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

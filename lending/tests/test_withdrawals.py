"""Lenders' withdrawals: money out of their balance through the gateway, once, never above the balance."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput
from escrow.ledger import account_balances
from escrow.models import GatewayOperation, LedgerTransaction, OperationKind
from escrow.vocabulary import lender_balance_code, lender_payout_code, withdrawal_key
from lending.models import LoanLender, Withdrawal, WithdrawalStatus
from lending.selectors import lender_balances
from lending.services import lender_withdraw, loan_repay, withdrawals_reconcile
from lending.services import withdrawals as withdrawals_module
from lending.verification import lending_verify

from .factories import loan_funded

pytestmark = pytest.mark.django_db


def lender_with_balance():
    """Return (lender, balance in USD) of a lender paid part of a repayment."""
    loan = loan_funded(amounts=[60_000, 40_000])
    loan_repay(loan=loan, actor=loan.borrower, amount=20_000, idempotency_key="repay-1")
    lender = LoanLender.objects.filter(loan=loan).order_by("-principal").first().lender
    return lender, balance_of(lender)


def balance_of(lender, currency="USD") -> int:
    return account_balances(codes=[lender_balance_code(lender.pk)]).get((lender_balance_code(lender.pk), currency), 0)


def paid_out_to(lender, currency="USD") -> int:
    return account_balances(codes=[lender_payout_code(lender.pk)]).get((lender_payout_code(lender.pk), currency), 0)


def test_a_lender_withdraws_part_of_their_balance_to_their_bank():
    lender, balance = lender_with_balance()
    assert balance > 0

    withdrawal = lender_withdraw(lender=lender, currency="USD", amount=balance - 1, idempotency_key="w-1")

    assert withdrawal.status == WithdrawalStatus.PAID
    assert withdrawal.gateway_reference
    assert balance_of(lender) == 1
    assert paid_out_to(lender) == balance - 1
    payout = GatewayOperation.objects.get(idempotency_key=withdrawal_key(withdrawal.pk))
    assert (payout.kind, payout.amount, payout.destination) == (
        OperationKind.PAYOUT,
        balance - 1,
        lender_payout_code(lender.pk),
    )
    assert set(
        AuditEvent.objects.filter(object_id=str(withdrawal.pk), object_type="lending.Withdrawal").values_list(
            "action", flat=True
        )
    ) == {"lender_withdraw", "lender_withdraw_finish"}
    assert [(b.currency, b.balance, b.available) for b in lender_balances(user=lender)] == [("USD", 1, 1)]
    assert lending_verify() == []


@pytest.mark.parametrize(
    ("currency", "amount", "code"),
    [
        ("USD", 0, "amount_not_positive"),
        ("USD", -5, "amount_not_positive"),
        ("USD", None, "amount_above_balance"),  # one more than the balance
        ("EUR", 100, "amount_above_balance"),  # no balance in that currency
        ("XXX", 100, "invalid_currency"),
    ],
)
def test_a_bad_withdrawal_is_refused_with_a_clear_error_and_moves_nothing(currency, amount, code):
    lender, balance = lender_with_balance()
    transactions = LedgerTransaction.objects.count()

    with pytest.raises(InvalidInput) as refusal:
        lender_withdraw(
            lender=lender, currency=currency, amount=balance + 1 if amount is None else amount, idempotency_key="w"
        )

    assert refusal.value.code == code
    assert refusal.value.message
    assert Withdrawal.objects.count() == 0
    assert not GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).exists()
    assert LedgerTransaction.objects.count() == transactions
    assert balance_of(lender) == balance


def test_the_refusal_names_what_can_be_withdrawn():
    lender, balance = lender_with_balance()
    with pytest.raises(InvalidInput, match="at most"):
        lender_withdraw(lender=lender, currency="USD", amount=balance + 1, idempotency_key="w")
    with pytest.raises(InvalidInput, match="no money to withdraw in EUR"):
        lender_withdraw(lender=lender, currency="EUR", amount=1, idempotency_key="w")


def test_someone_who_never_lent_has_nothing_to_withdraw():
    with pytest.raises(InvalidInput):
        lender_withdraw(lender=UserFactory(), currency="USD", amount=1, idempotency_key="w")


def test_the_same_key_gives_the_same_withdrawal_and_another_amount_is_a_conflict():
    lender, balance = lender_with_balance()
    first = lender_withdraw(lender=lender, currency="USD", amount=100, idempotency_key="w-1")

    again = lender_withdraw(lender=lender, currency="USD", amount=100, idempotency_key="w-1")
    with pytest.raises(Conflict) as other_amount:
        lender_withdraw(lender=lender, currency="USD", amount=101, idempotency_key="w-1")
    with pytest.raises(Conflict):
        lender_withdraw(lender=lender, currency="EUR", amount=100, idempotency_key="w-1")

    assert again.pk == first.pk
    assert other_amount.value.code == "idempotency_key_reused"
    assert Withdrawal.objects.count() == 1
    assert balance_of(lender) == balance - 100
    assert GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).count() == 1


def test_a_crash_after_the_gateway_is_finished_by_the_reconciler_without_paying_twice(monkeypatch):
    lender, balance = lender_with_balance()

    def crash(**_kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(withdrawals_module, "ledger_post", crash)
    with pytest.raises(RuntimeError):
        lender_withdraw(lender=lender, currency="USD", amount=balance, idempotency_key="w-1")
    monkeypatch.undo()

    withdrawal = Withdrawal.objects.get()
    assert withdrawal.status == WithdrawalStatus.PENDING
    assert balance_of(lender) == balance  # the ledger has not moved yet ...
    with pytest.raises(InvalidInput):  # ... but the money is held back from another withdrawal
        lender_withdraw(lender=lender, currency="USD", amount=1, idempotency_key="w-2")
    assert lending_verify() == []

    assert withdrawals_reconcile() == {"paid": 0, "failed": 0, "unavailable": 0}  # too fresh: maybe still running
    later = timezone.now() + datetime.timedelta(minutes=10)
    assert withdrawals_reconcile(now=later)["paid"] == 1
    assert withdrawals_reconcile(now=later)["paid"] == 0

    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.PAID
    assert balance_of(lender) == 0
    assert paid_out_to(lender) == balance
    assert GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).count() == 1
    assert lending_verify() == []


def test_a_refused_payout_fails_the_withdrawal_and_gives_the_money_back_to_the_balance(monkeypatch):
    from escrow.gateway import GatewayResult, SandboxGateway

    lender, balance = lender_with_balance()
    monkeypatch.setattr(
        SandboxGateway, "payout", lambda self, **kw: GatewayResult(ok=False, code="account_closed", message="Closed")
    )

    withdrawal = lender_withdraw(lender=lender, currency="USD", amount=balance, idempotency_key="w-1")

    assert (withdrawal.status, withdrawal.error_code) == (WithdrawalStatus.FAILED, "account_closed")
    assert balance_of(lender) == balance
    assert lender_balances(user=lender)[0].available == balance
    assert lending_verify() == []


def test_verify_ledger_reports_a_paid_withdrawal_without_its_posting():
    lender, balance = lender_with_balance()
    Withdrawal.objects.create(lender=lender, currency="USD", amount=5, idempotency_key="forged", status="paid")
    Withdrawal.objects.create(lender=lender, currency="USD", amount=balance + 1, idempotency_key="too-much")

    problems = lending_verify()

    assert any("Withdrawals whose ledger transaction differs" in p for p in problems)
    assert any("pending withdrawals exceed their balance" in p for p in problems)


def test_a_gateway_outage_leaves_the_withdrawal_pending_for_the_reconciler(monkeypatch):
    from crowdfund_site.exceptions import PaymentUnavailable
    from escrow.gateway import GatewayResult, SandboxGateway

    lender, balance = lender_with_balance()
    monkeypatch.setattr(SandboxGateway, "payout", lambda self, **kw: GatewayResult(ok=False, transient=True))
    with pytest.raises(PaymentUnavailable):
        lender_withdraw(lender=lender, currency="USD", amount=balance, idempotency_key="w-1")
    assert Withdrawal.objects.get().status == WithdrawalStatus.PENDING
    assert balance_of(lender) == balance
    assert withdrawals_reconcile(now=timezone.now() + datetime.timedelta(minutes=10))["unavailable"] == 1
    monkeypatch.undo()

    assert withdrawals_reconcile(now=timezone.now() + datetime.timedelta(minutes=10))["paid"] == 1
    assert balance_of(lender) == 0
    assert lending_verify() == []


def test_beat_runs_the_reconciler():
    from django.conf import settings

    from lending.tasks import reconcile_withdrawals

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "lending.tasks.reconcile_withdrawals" in tasks
    assert reconcile_withdrawals.apply().get() == {"paid": 0, "failed": 0, "unavailable": 0}

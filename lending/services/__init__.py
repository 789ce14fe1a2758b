"""Writes of the lending app: loan terms, loans, schedules, repayments and payouts to lenders.

Every function here is the one way its change is made; each runs in one transaction and says what
it locks and raises. Amounts are integers in the loan currency's minor unit. The exact splits
live in ``lending.schedules`` and ``lending.allocation`` (pure functions); these modules store
their results. By topic: ``terms``, ``loans`` (creation, states, late and default) and
``repayments``, ``withdrawals`` and ``relending`` (paying a loan pledge from the balance).
"""

from .collections import loan_autopay_set, loans_run_due_work
from .investor_limits import (
    lender_knowledge_test_take,
    lender_limit_check,
    lender_profile_update,
    lending_consent_give,
)
from .loans import (
    late_fee_for,
    loan_create,
    loan_mark_defaulted,
    loan_schedule,
    loan_set_status,
    loan_write_off,
    loans_assess_late,
)
from .relending import lender_balance_reserve
from .repayments import loan_pay_off, loan_recovery_record, loan_repay, loan_repay_by_card
from .terms import campaign_funding_update, loan_terms_set, loan_terms_validate
from .withdrawals import lender_withdraw, withdrawals_reconcile

__all__ = [
    "campaign_funding_update",
    "late_fee_for",
    "lender_balance_reserve",
    "lender_knowledge_test_take",
    "lender_limit_check",
    "lender_profile_update",
    "lender_withdraw",
    "lending_consent_give",
    "loan_autopay_set",
    "loan_create",
    "loan_mark_defaulted",
    "loan_pay_off",
    "loan_recovery_record",
    "loan_repay",
    "loan_repay_by_card",
    "loan_schedule",
    "loan_set_status",
    "loan_terms_set",
    "loan_terms_validate",
    "loan_write_off",
    "loans_assess_late",
    "loans_run_due_work",
    "withdrawals_reconcile",
]

"""Re-lending: a lender pays a loan pledge partly or wholly from their balance instead of a card.

The pledge itself is made by ``pledges.services.pledge_create`` (with ``from_balance``), like any
loan: investor limits, "not your own loan", the one open pledge per campaign, idempotency. This
module is the balance's side, registered for debt campaigns with ``pledges.pledge_checks``:
``lender_balance_reserve`` runs in the transaction that writes the pending pledge, under the lock
of the lender's balance account row, the same lock every withdrawal takes
(``lending.services.withdrawals``). The pending pledge then holds its part back (it counts in
``lending.selectors.balance_reserved_total``) until its hold moves it in the ledger, balance ->
the campaign's escrow, in the hold's one transaction (``escrow.vocabulary.hold_posting``). So two
pledges, or a pledge and a withdrawal, at the same moment can never together take more than the
balance. A failed campaign refunds that part to the balance; a funded one disburses it with the
rest of the loan.
"""

from django.utils.translation import gettext as _

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import format_amount
from escrow.ledger import account_balance, ledger_account_lock
from escrow.vocabulary import lender_balance_code

from ..selectors import balance_reserved_total


def lender_balance_lock_available(*, lender_id: int, currency: str) -> int:
    """Lock the lender's balance in ``currency`` and return what of it is free now (0 without one).

    Free is the ledger balance minus what pending withdrawals and pending pledges paid from it
    hold back. Call inside a transaction: the answer holds until it commits.
    """
    account = ledger_account_lock(code=lender_balance_code(lender_id), currency=currency)
    if account is None:
        return 0
    return account_balance(account=account) - balance_reserved_total(lender_id=lender_id, currency=currency)


def lender_balance_reserve(*, backer, currency: str, amount: int) -> None:
    """Refuse unless ``amount`` of the lender's balance in ``currency`` is free, keeping it locked.

    Runs inside the transaction that writes the pending pledge (``pledge_balance_reserve``), which
    then holds the amount back. Raises InvalidInput ``balance_too_small`` (saying what is free),
    reserving nothing.
    """
    available = lender_balance_lock_available(lender_id=backer.pk, currency=currency)
    if amount > available:
        if available <= 0:
            message = _("You have no balance in %(currency)s to lend from.") % {"currency": currency}
        else:
            message = _("Your balance has only %(available)s available to lend.") % {
                "available": format_amount(available, currency)
            }
        raise InvalidInput(message, code="balance_too_small", field="from_balance")

"""Checks that apps above pledges add to the pledge path for one funding model.

Pledges cannot import lending (it sits below it), yet a debt campaign's pledge must pass the
lender's investor limit. So lending registers its check here when the app is ready, and
``pledge_create`` and ``pledge_change`` (pledges.changes) run the checks of the campaign's funding model:
for the others there are none, so their pledges pay no extra query.

Likewise a lender may pay a loan pledge from their balance (what repayments paid them): lending
registers the function that reserves that balance (``pledge_balance_source_register``); a campaign
of a funding model without one takes no payment from a balance.
"""

import contextlib
from collections.abc import Callable

from django.utils.translation import gettext as _

from crowdfund_site.exceptions import InvalidInput

# funding model -> checks; each raises an ApplicationError to refuse, before anything is charged.
_CHECKS: dict[str, list[Callable]] = {}
# funding model -> the guard the pending pledge row is written under (see ``pledge_reserve_guard``).
_GUARDS: dict[str, Callable] = {}
# funding model -> what reserves part of a pledge on the backer's balance (``pledge_balance_reserve``).
_BALANCE_SOURCES: dict[str, Callable] = {}


def pledge_check_register(*, funding_model: str, check: Callable) -> None:
    """Run ``check(backer=, campaign=, amount=, replaces=)`` on every pledge to a ``funding_model`` campaign."""
    checks = _CHECKS.setdefault(funding_model, [])
    if check not in checks:
        checks.append(check)


def pledge_checks_run(*, backer, campaign, amount: int, replaces=None) -> None:
    """Run the registered checks of ``campaign``'s funding model; ``replaces`` is a pledge being resized."""
    for check in _CHECKS.get(campaign.funding_model, ()):
        check(backer=backer, campaign=campaign, amount=amount, replaces=replaces)


def pledge_guard_register(*, funding_model: str, guard: Callable) -> None:
    """Write every new pledge to a ``funding_model`` campaign inside ``guard(backer=, campaign=, amount=)``.

    The guard is a context manager that opens a transaction, takes the lock it needs and checks
    again, so that a check over the backer's other pledges (a lender's limit) holds against
    pledges made at the same moment; the pledge row is written before it commits.
    """
    _GUARDS[funding_model] = guard


def pledge_reserve_guard(*, backer, campaign, amount: int):
    """Return the context the pending pledge is written in: its funding model's guard, or none."""
    guard = _GUARDS.get(campaign.funding_model)
    return guard(backer=backer, campaign=campaign, amount=amount) if guard else contextlib.nullcontext()


def pledge_balance_source_register(*, funding_model: str, reserve: Callable) -> None:
    """Let pledges to a ``funding_model`` campaign be paid partly or wholly from the backer's balance.

    ``reserve(backer=, currency=, amount=)`` runs in the transaction that writes the pending
    pledge: it locks the balance, refuses (an ApplicationError) if less than ``amount`` of it is
    free, and otherwise lets the pledge row, written next in that transaction, hold it back.
    """
    _BALANCE_SOURCES[funding_model] = reserve


def pledge_balance_reserve(*, backer, campaign, amount: int) -> None:
    """Reserve ``amount`` of the backer's balance for a pledge to ``campaign``; call inside a transaction.

    Raises InvalidInput ``balance_not_accepted`` if the campaign's funding model takes no payment
    from a balance, or what its source raises (the balance is too small).
    """
    reserve = _BALANCE_SOURCES.get(campaign.funding_model)
    if reserve is None:
        raise InvalidInput(
            _("Only loans can be paid from your balance."), code="balance_not_accepted", field="from_balance"
        )
    reserve(backer=backer, currency=campaign.currency, amount=amount)

"""Checks that apps above pledges add to the pledge path for one funding model.

Pledges cannot import lending (it sits below it), yet a debt campaign's pledge must pass the
lender's investor limit. So lending registers its check here when the app is ready, and
``pledge_create`` and ``pledge_change`` (pledges.changes) run the checks of the campaign's funding model:
for the others there are none, so their pledges pay no extra query.
"""

import contextlib
from collections.abc import Callable

# funding model -> checks; each raises an ApplicationError to refuse, before anything is charged.
_CHECKS: dict[str, list[Callable]] = {}
# funding model -> the guard the pending pledge row is written under (see ``pledge_reserve_guard``).
_GUARDS: dict[str, Callable] = {}


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

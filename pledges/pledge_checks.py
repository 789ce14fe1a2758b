"""Checks that apps above pledges add to the pledge path for one funding model.

Pledges cannot import lending (it sits below it), yet a debt campaign's pledge must pass the
lender's investor limit. So lending registers its check here when the app is ready, and
``pledge_create`` and ``pledge_change`` (pledges.changes) run the checks of the campaign's funding model:
for the others there are none, so their pledges pay no extra query.
"""

from collections.abc import Callable

# funding model -> checks; each raises an ApplicationError to refuse, before anything is charged.
_CHECKS: dict[str, list[Callable]] = {}


def pledge_check_register(*, funding_model: str, check: Callable) -> None:
    """Run ``check(backer=, campaign=, amount=, replaces=)`` on every pledge to a ``funding_model`` campaign."""
    checks = _CHECKS.setdefault(funding_model, [])
    if check not in checks:
        checks.append(check)


def pledge_checks_run(*, backer, campaign, amount: int, replaces=None) -> None:
    """Run the registered checks of ``campaign``'s funding model; ``replaces`` is a pledge being resized."""
    for check in _CHECKS.get(campaign.funding_model, ()):
        check(backer=backer, campaign=campaign, amount=amount, replaces=replaces)

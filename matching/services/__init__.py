"""Matching services: pools funded by sponsors, rounds that share them, matched money settling.

Guarantees:

- A pool is checked whole before anything is written (a positive amount, caps within it, dates
  in order, a sponsor who may sponsor and does not match their own campaign); a refusal writes
  nothing. Its money is charged through the gateway, outside any lock and keyed by pool, and
  deposited in the pool's own ledger account by an idempotent posting.
- A round moves through ``ROUND_TRANSITIONS`` only, each move under the round's row lock and
  recorded (who, when, from, to, why). Ending it freezes the allocation; paying it moves every
  allocation pool -> campaign escrow in one ledger transaction keyed by round, so a round is
  paid once whatever is retried.
- A campaign applies to a pool that takes applications once; staff accept it (it joins the
  pool's list, the one eligibility rule) or decline it, once, with a reason, audited.
- Matched money follows its campaign: ``matching_campaign_settle`` (called by settlement while
  it holds the campaign's lock) releases it with the campaign's funds or returns it to the pool.
"""

from .applications import pool_application_decide, pool_application_submit
from .logo import pool_logo_set
from .pools import pool_choose_leftover, pool_close, pool_create, pool_create_and_fund, pool_fund
from .rounds import (
    round_cancel,
    round_create,
    round_end,
    round_exclude_contribution,
    round_pay,
    round_publish,
    round_set_status,
    rounds_end_due,
)
from .settle import matching_campaign_settle

__all__ = [
    "matching_campaign_settle",
    "pool_application_decide",
    "pool_application_submit",
    "pool_choose_leftover",
    "pool_close",
    "pool_create",
    "pool_create_and_fund",
    "pool_fund",
    "pool_logo_set",
    "round_cancel",
    "round_create",
    "round_end",
    "round_exclude_contribution",
    "round_pay",
    "round_publish",
    "round_set_status",
    "rounds_end_due",
]

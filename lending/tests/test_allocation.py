"""Payouts to lenders stay within one unit of their exact share, never go back, and sum exactly."""

import datetime
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending.allocation import InstallmentDue, distribution_step, repayment_apply, xirr


def run_distribution(shares, amounts):
    """Pay ``amounts`` out one after the other; check the invariants after each; return the totals."""
    loan = sum(shares)
    paid = [0] * len(shares)
    distributed = 0
    for amount in amounts:
        distributed += amount
        payouts = distribution_step(shares=shares, paid=paid, distributed=distributed)
        assert sum(payouts) == amount
        assert min(payouts) >= 0
        paid = [p + q for p, q in zip(paid, payouts, strict=True)]
        # Within one minor unit of the exact share: |paid - distributed * share / loan| < 1.
        assert all(abs(p * loan - distributed * s) < loan for p, s in zip(paid, shares, strict=True))
    return paid


def test_a_growing_total_never_takes_a_unit_back():
    # Largest remainder applied afresh to 29 then 30 would give a lender of 1 their unit at 29
    # and take it back at 30 (the Alabama paradox); and carrying it over would leave 31 owed of 30.
    shares = [1, 23, 1, 20, 1]

    paid = run_distribution(shares, [29, 1])

    assert sum(paid) == 30


def test_equal_lenders_take_turns_with_the_odd_unit():
    paid = run_distribution([100, 100, 100], [1, 1, 1])

    assert paid == [1, 1, 1]


def test_principal_paid_out_in_full_is_exactly_what_each_lent():
    shares = [3_333, 1, 6_666, 250_000]

    paid = run_distribution(shares, [7, 100_000, 13, sum(shares) - 100_020])

    assert paid == shares


def test_a_state_it_did_not_produce_is_refused():
    with pytest.raises(ValueError, match="within one unit"):
        distribution_step(shares=[1, 1], paid=[2, 0], distributed=2)
    with pytest.raises(ValueError, match="cannot go down"):
        distribution_step(shares=[1, 1], paid=[1, 1], distributed=1)


@settings(max_examples=30, deadline=None)
@given(
    lenders=st.integers(1, 5_000),
    seed=st.integers(0, 2**32),
    spread=st.sampled_from([1, 10, 1_000, 10**6]),
    payments=st.lists(st.integers(0, 10**7), min_size=1, max_size=12),
)
def test_random_lenders_and_payments_keep_the_one_unit_bound_and_exact_sums(lenders, seed, spread, payments):
    rng = random.Random(seed)
    shares = [rng.randint(1, spread) for _ in range(lenders)]
    # Principal repaid never passes the loan: the last payment repays whatever is left.
    loan = sum(shares)
    amounts, left = [], loan
    for amount in payments:
        amounts.append(min(amount, left))
        left -= amounts[-1]
    amounts.append(left)

    paid = run_distribution(shares, amounts)

    assert paid == shares  # no lender received more principal than they lent, and all of it


@settings(max_examples=200, deadline=None)
@given(
    shares=st.lists(st.integers(1, 60), min_size=2, max_size=8),
    steps=st.lists(st.integers(0, 7), min_size=1, max_size=40),
)
def test_many_small_payments_keep_the_bound(shares, steps):
    run_distribution(shares, steps)


def test_a_partial_repayment_pays_fees_then_interest_then_principal_of_the_oldest():
    dues = [
        InstallmentDue(late_fee=15_00, fee=1_00, interest=10_00, principal=80_00),
        InstallmentDue(fee=90, interest=9_00, principal=81_00),
    ]

    first, second = repayment_apply(amount=110_00, dues=dues)

    assert (first.index, first.late_fee, first.fee, first.interest, first.principal) == (0, 15_00, 1_00, 10_00, 80_00)
    assert (second.index, second.late_fee, second.fee, second.interest, second.principal) == (1, 0, 90, 3_10, 0)


def test_a_repayment_above_what_is_owed_or_zero_is_refused():
    dues = [InstallmentDue(interest=1, principal=10)]
    with pytest.raises(ValueError, match="more than is owed"):
        repayment_apply(amount=12, dues=dues)
    with pytest.raises(ValueError, match="positive"):
        repayment_apply(amount=0, dues=dues)


@settings(max_examples=200, deadline=None)
@given(
    dues=st.lists(
        st.builds(
            InstallmentDue,
            late_fee=st.integers(0, 10**4),
            fee=st.integers(0, 10**4),
            interest=st.integers(0, 10**6),
            principal=st.integers(0, 10**8),
        ),
        min_size=1,
        max_size=12,
    ),
    fraction=st.fractions(0, 1),
)
def test_any_repayment_is_applied_whole_and_in_order(dues, fraction):
    owed = sum(d.total for d in dues)
    amount = max(1, int(owed * fraction))
    if owed == 0:
        return

    applications = repayment_apply(amount=amount, dues=dues)

    assert sum(a.total for a in applications) == amount
    # Nothing of a later installment is paid while an earlier one is still owed.
    for earlier, later in itertools.pairwise(applications):
        assert earlier.total == dues[earlier.index].total
        assert later.index > earlier.index


def test_xirr_of_a_year_at_ten_percent_is_ten_percent_and_none_without_returns():
    lent, repaid = datetime.date(2027, 1, 1), datetime.date(2028, 1, 1)

    assert xirr([(lent, -100_00), (repaid, 110_00)]) == pytest.approx(0.10, abs=1e-6)
    assert xirr([(lent, -100_00), (repaid, 90_00)]) == pytest.approx(-0.10, abs=1e-6)
    assert xirr([(lent, -100_00)]) is None

"""Schedules add up to the loan exactly, for every repayment type, rate and grace period."""

import datetime
import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending.schedules import (
    ANNUITY,
    BULLET,
    EQUAL_PRINCIPAL,
    REPAYMENT_TYPES,
    add_months,
    annuity_payment,
    divide_half_even,
    schedule_build,
)


def test_annuity_of_a_thousand_at_twelve_percent_pays_88_85_a_month():
    schedule = schedule_build(principal=1_000_00, rate_bps=1200, term_months=12, repayment_type=ANNUITY)

    assert [i.principal + i.interest for i in schedule[:-1]] == [88_85] * 11
    assert schedule[0].interest == 10_00
    assert sum(i.principal for i in schedule) == 1_000_00
    # The last installment takes the residue of the rounded payments.
    assert schedule[-1].principal + schedule[-1].interest == 88_84


def test_equal_principal_with_grace_pays_interest_only_first():
    schedule = schedule_build(
        principal=1_000_00, rate_bps=600, term_months=5, repayment_type=EQUAL_PRINCIPAL, grace_months=2
    )

    assert [i.principal for i in schedule] == [0, 0, 333_33, 333_33, 333_34]
    assert [i.interest for i in schedule] == [5_00, 5_00, 5_00, 3_33, 1_67]


def test_bullet_pays_all_principal_at_the_end():
    schedule = schedule_build(principal=500_00, rate_bps=1000, term_months=3, repayment_type=BULLET)

    assert [i.principal for i in schedule] == [0, 0, 500_00]
    assert [i.interest for i in schedule] == [4_17, 4_17, 4_17]


def test_servicing_fee_is_charged_on_the_outstanding_principal():
    schedule = schedule_build(
        principal=1_200_00, rate_bps=0, term_months=3, repayment_type=EQUAL_PRINCIPAL, fee_bps=100
    )

    assert [i.fee for i in schedule] == [1_00, 67, 33]
    assert [i.to_lenders for i in schedule] == [400_00, 400_00, 400_00]


def test_interest_is_rounded_half_even():
    # 1,000 minor units at 6 % a year: exactly 5 units a month; 500 at 6 %: 2.5 -> 2, 1,500: 7.5 -> 8.
    interests = [
        schedule_build(principal=p, rate_bps=600, term_months=2, repayment_type=BULLET)[0].interest
        for p in (1_000, 500, 1_500)
    ]
    assert interests == [5, 2, 8]


def test_due_dates_keep_the_day_of_month_or_take_the_last_day():
    schedule = schedule_build(
        principal=300, rate_bps=0, term_months=3, repayment_type=ANNUITY, start=datetime.date(2027, 1, 31)
    )

    assert [i.due_date for i in schedule] == [
        datetime.date(2027, 2, 28),
        datetime.date(2027, 3, 31),
        datetime.date(2027, 4, 30),
    ]
    assert add_months(datetime.date(2027, 11, 15), 3) == datetime.date(2028, 2, 15)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"principal": 0}, "principal"),
        ({"rate_bps": -1}, "rate_bps"),
        ({"term_months": 0}, "term_months"),
        ({"grace_months": 12}, "grace_months"),
        ({"repayment_type": "balloon"}, "repayment type"),
    ],
)
def test_arguments_outside_the_domain_are_refused(kwargs, message):
    arguments = {"principal": 100, "rate_bps": 500, "term_months": 12, "repayment_type": ANNUITY} | kwargs
    with pytest.raises(ValueError, match=message):
        schedule_build(**arguments)


@settings(max_examples=300, deadline=None)
@given(
    principal=st.integers(1, 10**9),
    rate_bps=st.integers(0, 3600),
    term_months=st.integers(1, 60),
    repayment_type=st.sampled_from(REPAYMENT_TYPES),
    grace=st.integers(0, 6),
    fee_bps=st.integers(0, 500),
)
def test_any_schedule_repays_the_loan_exactly_and_the_balance_never_rises(
    principal, rate_bps, term_months, repayment_type, grace, fee_bps
):
    grace_months = min(grace, term_months - 1)
    schedule = schedule_build(
        principal=principal,
        rate_bps=rate_bps,
        term_months=term_months,
        repayment_type=repayment_type,
        grace_months=grace_months,
        fee_bps=fee_bps,
    )

    assert len(schedule) == term_months
    assert sum(i.principal for i in schedule) == principal
    balances = [principal] + [i.balance_after for i in schedule]
    assert all(later <= earlier for earlier, later in itertools.pairwise(balances))
    assert balances[-1] == 0
    assert all(i.principal >= 0 and i.interest >= 0 and i.fee >= 0 for i in schedule)
    assert all(i.principal == 0 for i in schedule[:grace_months])
    if repayment_type == BULLET:
        assert all(i.principal == 0 for i in schedule[:-1])
    # Interest is a month of the rate on what was outstanding, to the nearest unit.
    for before, installment in zip(balances, schedule, strict=False):
        assert abs(installment.interest * 120_000 - before * rate_bps) <= 60_000


@given(numerator=st.integers(-(10**12), 10**12), denominator=st.integers(1, 10**6))
def test_integer_half_even_division_agrees_with_exact_rounding(numerator, denominator):
    assert divide_half_even(numerator, denominator) == round(Fraction(numerator, denominator))


@given(principal=st.integers(1, 10**9), rate_bps=st.integers(1, 3600), months=st.integers(1, 60))
def test_the_annuity_payment_is_the_exact_formula_rounded_half_even(principal, rate_bps, months):
    rate = Fraction(rate_bps, 120_000)
    growth = (1 + rate) ** months
    assert annuity_payment(principal=principal, rate_bps=rate_bps, months=months) == round(
        principal * rate * growth / (growth - 1)
    )

"""Splitting a sum across campaigns: exact in minor units, in proportion to the weights."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdfund_site.exceptions import InvalidInput
from risk.services import risk_allocate

weights_strategy = st.dictionaries(
    st.integers(min_value=1, max_value=10**9), st.integers(min_value=0, max_value=10**12), min_size=1, max_size=30
).filter(lambda w: sum(w.values()) > 0)


@given(total=st.integers(min_value=1, max_value=10**15), weights=weights_strategy)
def test_the_parts_always_add_up_to_the_whole_and_follow_the_weights(total, weights):
    parts = risk_allocate(total=total, currency="USD", weights=weights)

    assert list(parts) == list(weights)
    assert sum(parts.values()) == total
    weight_sum = sum(weights.values())
    for key, part in parts.items():
        exact_floor = total * weights[key] // weight_sum
        assert exact_floor <= part <= exact_floor + 1


def test_a_remainder_goes_to_the_largest_fractions():
    assert risk_allocate(total=100, currency="USD", weights={1: 1, 2: 1, 3: 1}) == {1: 34, 2: 33, 3: 33}


@pytest.mark.parametrize(
    ("total", "weights"),
    [
        (100, {}),
        (100, {1: 0, 2: 0}),
        (100, {1: -1, 2: 3}),
        (100, {1: 1.5}),
        (0, {1: 1}),
        (-5, {1: 1}),
    ],
)
def test_bad_totals_and_weights_are_refused_with_a_clear_error(total, weights):
    with pytest.raises(InvalidInput):
        risk_allocate(total=total, currency="USD", weights=weights)

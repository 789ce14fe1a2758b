from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import (
    ABSOLUTE_MAX_MINOR,
    CURRENCY_EXPONENTS,
    allocate,
    check_amount,
    format_amount,
    parse_amount,
)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        ("12", "USD", 1200),
        ("0.01", "USD", 1),
        ("1,250", "USD", 125_000),
        ("  7.05 ", "EUR", 705),
        ("$12.50", "USD", 1250),
        ("€3", "EUR", 300),
        ("1500", "JPY", 1500),
        ("¥1,500", "JPY", 1500),
        (12, "USD", 1200),
        ("10,000.50", "USD", 1_000_050),
        ("1,000,000", "USD", 100_000_000),
        ("1,250.00 CHF", "CHF", 125_000),
        ("CHF 12", "CHF", 1_200),
    ],
)
def test_parse_amount_reads_what_people_type(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "code"),
    [
        ("0", "USD", "amount_not_positive"),
        ("0.00", "USD", "amount_not_positive"),
        ("-5", "USD", "amount_not_positive"),
        ("-0.01", "USD", "amount_not_positive"),
        ("12.345", "USD", "too_many_decimals"),
        ("12.500", "USD", "too_many_decimals"),
        ("0.001", "USD", "too_many_decimals"),
        ("12.5", "JPY", "too_many_decimals"),
        ("", "USD", "invalid_amount"),
        ("twelve", "USD", "invalid_amount"),
        ("12.50.1", "USD", "invalid_amount"),
        ("NaN", "USD", "invalid_amount"),
        ("Infinity", "USD", "invalid_amount"),
        ("1e3", "USD", "invalid_amount"),
        ("1E-2", "USD", "invalid_amount"),
        ("12.50", "XYZ", "invalid_currency"),
        ("12.50", "usd", "invalid_currency"),
        ("99999999999999999999", "USD", "amount_too_large"),
        # A comma is a thousands separator only between groups of three digits.
        ("1,50", "USD", "decimal_comma"),
        ("1,5", "EUR", "decimal_comma"),
        ("€12,99", "EUR", "decimal_comma"),
        (",50", "USD", "decimal_comma"),
        ("1,5", "JPY", "invalid_amount"),
        ("1,2345", "USD", "invalid_amount"),
        ("12,345,67", "USD", "invalid_amount"),
        ("1234,567", "USD", "invalid_amount"),
        ("1,500,", "USD", "invalid_amount"),
        ("1,,500", "USD", "invalid_amount"),
        ("1.500,00", "EUR", "invalid_amount"),
        ("1_000", "USD", "invalid_amount"),
        ("1 500", "USD", "invalid_amount"),
    ],
)
def test_parse_amount_refuses_bad_input_with_a_code_and_a_message(text, currency, code):
    with pytest.raises(InvalidInput) as refused:
        parse_amount(text, currency)
    assert refused.value.code == code
    assert refused.value.message


def test_parse_amount_says_how_many_decimals_the_currency_has():
    with pytest.raises(InvalidInput, match="at most 2 decimals"):
        parse_amount("1.999", "USD")
    with pytest.raises(InvalidInput, match="no decimals"):
        parse_amount("100.5", "JPY")


def test_parse_amount_refuses_more_than_the_limit_and_names_it():
    assert parse_amount("100.00", "USD", max_minor=10_000) == 10_000
    with pytest.raises(InvalidInput, match=r"at most \$100\.00") as refused:
        parse_amount("100.01", "USD", max_minor=10_000)
    assert refused.value.code == "amount_too_large"


@pytest.mark.parametrize("bad", [0, -1, 12.5, Decimal("12"), "1250", True, None])
def test_check_amount_accepts_only_positive_integers(bad):
    with pytest.raises(InvalidInput):
        check_amount(bad, "USD")


def test_check_amount_never_allows_more_than_the_absolute_maximum():
    assert check_amount(ABSOLUTE_MAX_MINOR, "USD", max_minor=10**18) == ABSOLUTE_MAX_MINOR
    with pytest.raises(InvalidInput) as refused:
        check_amount(ABSOLUTE_MAX_MINOR + 1, "USD", max_minor=10**18)
    assert refused.value.code == "amount_too_large"


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (125_000, "USD", "$1,250.00"),
        (5, "USD", "$0.05"),
        (1_250, "JPY", "¥1,250"),
        (99, "EUR", "€0.99"),
        (1_000, "CHF", "10.00 CHF"),
    ],
)
def test_format_amount(minor, currency, shown):
    assert format_amount(minor, currency) == shown


def test_a_decimal_comma_is_refused_with_a_message_that_shows_the_point():
    with pytest.raises(InvalidInput) as refused:
        parse_amount("1,50", "USD")
    assert "1.50" in refused.value.message


@given(
    minor=st.integers(min_value=1, max_value=ABSOLUTE_MAX_MINOR), currency=st.sampled_from(sorted(CURRENCY_EXPONENTS))
)
def test_format_then_parse_gives_the_amount_back(minor, currency):
    assert parse_amount(format_amount(minor, currency), currency) == minor


@given(
    minor=st.integers(min_value=1, max_value=ABSOLUTE_MAX_MINOR), currency=st.sampled_from(sorted(CURRENCY_EXPONENTS))
)
def test_amounts_written_with_a_point_and_no_separators_parse_exactly(minor, currency):
    exponent = CURRENCY_EXPONENTS[currency]
    text = str(minor) if exponent == 0 else f"{minor // 10**exponent}.{minor % 10**exponent:0{exponent}d}"
    assert parse_amount(text, currency) == minor


@given(
    whole=st.integers(min_value=0, max_value=10**9),
    decimals=st.text(alphabet="0123456789", min_size=1, max_size=2),
    symbol=st.sampled_from(["", "$"]),
)
def test_no_decimal_comma_is_ever_read_as_a_hundred_times_the_amount(whole, decimals, symbol):
    with pytest.raises(InvalidInput) as refused:
        parse_amount(f"{symbol}{whole},{decimals}", "USD")
    assert refused.value.code == "decimal_comma"


@given(text=st.text(alphabet="0123456789,.", min_size=1, max_size=16))
def test_commas_are_accepted_only_between_groups_of_three_digits(text):
    try:
        minor = parse_amount(text, "USD")
    except InvalidInput:
        return
    whole = text.split(".")[0]
    if "," in whole:
        head, *groups = whole.split(",")
        assert 1 <= len(head) <= 3
        assert all(len(group) == 3 for group in groups)
    assert "," not in text.partition(".")[2]
    assert minor == int(Decimal(text.replace(",", "")) * 100)


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (1, [1, 1], [1, 0]),
        (10_000, [500, 9_500], [500, 9_500]),
        # 5 % of 100.19 is 5.0095: the fee is rounded to the nearest cent, 5.01.
        (10_019, [500, 9_500], [501, 9_518]),
        # 5 % of 100.01 is 5.0005: the cent goes to the larger remainder, the initiator.
        (10_001, [500, 9_500], [500, 9_501]),
        (7, [0, 3], [0, 7]),
        (0, [1, 2], [0, 0]),
    ],
)
def test_allocate_splits_exactly_by_largest_remainder(total, weights, parts):
    assert allocate(total, weights) == parts


@pytest.mark.parametrize("weights", [[], [0, 0], [3, -1]])
def test_allocate_refuses_weights_it_cannot_split_by(weights):
    with pytest.raises(ValueError, match="weight"):
        allocate(100, weights)


@given(
    total=st.integers(min_value=0, max_value=10**15),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(any),
)
def test_allocate_parts_sum_to_the_whole_and_stay_within_a_unit_of_the_exact_share(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        exact_floor = total * weight // sum(weights)
        assert exact_floor <= part <= exact_floor + 1

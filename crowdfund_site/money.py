"""Money helpers: parse, format and split amounts held as integer minor units.

Every amount in the project is an ``int`` of the currency's minor unit (cents, fen, yen)
beside an ISO 4217 code. Floats never touch money: parsing goes through ``Decimal``.
"""

import re
from decimal import Decimal

from django.utils.translation import gettext

from .exceptions import InvalidInput

# ISO 4217 currencies the platform accepts, with their number of decimal places.
CURRENCY_EXPONENTS = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CNY": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "HKD": 2,
    "SGD": 2,
    "JPY": 0,
    "KRW": 0,
}
CURRENCY_CHOICES = [(code, code) for code in CURRENCY_EXPONENTS]
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥", "JPY": "¥", "KRW": "₩"}

# Nothing on the platform may be larger than this, whatever the setting says: it keeps sums of
# many amounts far inside a signed 64-bit column.
ABSOLUTE_MAX_MINOR = 10**15
# A plain decimal number as people write it: no exponent ("1e3"), no NaN or Infinity. Commas
# only between groups of three digits, as thousands separators: "1,500" and "10,000.50".
PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
GROUPED_NUMBER = re.compile(r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?")
# A comma where a point belongs ("1,50", "12,5"): the decimal comma of most of Europe.
DECIMAL_COMMA = re.compile(r"[+-]?[0-9]*,[0-9]{1,2}")


def currency_exponent(currency: str) -> int:
    """Return the number of decimal places of ``currency``; raise InvalidInput if unknown."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise InvalidInput(f"Unsupported currency {currency!r}.", code="invalid_currency", field="currency") from None


def parse_amount(text: str | int, currency: str, *, max_minor: int = ABSOLUTE_MAX_MINOR) -> int:
    """Return ``text`` (e.g. "12.50", "$1,250" or "1,250.00 CHF") as minor units of ``currency``.

    The decimal separator is a point. A comma is a thousands separator only between groups of
    three digits ("1,500", "10,000.50"): "1,50" is refused, never read as 150. Refuse with
    InvalidInput: anything that is not such a number (optionally with the currency's symbol or
    code), more decimals than the currency has, zero, negatives, and amounts above ``max_minor``.
    """
    exponent = currency_exponent(currency)
    cleaned = _without_currency(str(text).strip(), currency)
    if GROUPED_NUMBER.fullmatch(cleaned):
        cleaned = cleaned.replace(",", "")
    elif not PLAIN_NUMBER.fullmatch(cleaned):
        if DECIMAL_COMMA.fullmatch(cleaned) and exponent:
            message = gettext("Write decimals with a point, e.g. %(example)s; a comma only separates thousands.") % {
                "example": cleaned.replace(",", ".")
            }
            raise InvalidInput(message, code="decimal_comma", field="amount")
        raise InvalidInput(
            gettext("“%(text)s” is not an amount. Write it like 1500 or 1,500.00.") % {"text": text},
            code="invalid_amount",
            field="amount",
        )
    value = Decimal(cleaned)
    if value.as_tuple().exponent < -exponent:
        if exponent == 0:
            message = gettext("%(currency)s amounts have no decimals.") % {"currency": currency}
        else:
            message = gettext("%(currency)s amounts have at most %(places)d decimals.") % {
                "currency": currency,
                "places": exponent,
            }
        raise InvalidInput(message, code="too_many_decimals", field="amount")
    return check_amount(int(value.scaleb(exponent)), currency, max_minor=max_minor)


def _without_currency(text: str, currency: str) -> str:
    """Return ``text`` without a leading symbol ("$12") or a leading or trailing code ("12 CHF")."""
    symbol = CURRENCY_SYMBOLS.get(currency)
    if symbol and text.startswith(symbol):
        return text[len(symbol) :].strip()
    if text.upper().startswith(currency):
        return text[len(currency) :].strip()
    if text.upper().endswith(currency):
        return text[: -len(currency)].strip()
    return text


def check_amount(minor: int, currency: str, *, max_minor: int = ABSOLUTE_MAX_MINOR) -> int:
    """Return ``minor`` if it is a positive integer amount no larger than ``max_minor``."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise InvalidInput("Amounts are whole numbers of minor units.", code="invalid_amount", field="amount")
    if minor <= 0:
        raise InvalidInput(gettext("The amount must be more than zero."), code="amount_not_positive", field="amount")
    limit = min(max_minor, ABSOLUTE_MAX_MINOR)
    if minor > limit:
        raise InvalidInput(
            gettext("The amount may be at most %(limit)s.") % {"limit": format_amount(limit, currency)},
            code="amount_too_large",
            field="amount",
        )
    return minor


def format_amount(minor: int, currency: str) -> str:
    """Return ``minor`` as a human string, e.g. 125000 USD -> "$1,250.00"."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    value = Decimal(minor).scaleb(-exponent)
    number = f"{value:,.{exponent}f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to non-negative integer ``weights``; the parts sum to it.

    Largest remainder method: every part gets the floor of its exact share, and the units
    left over go one each to the parts with the largest remainders (earlier parts win ties).
    """
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("allocate() needs at least one positive weight and no negative ones")
    weight_sum = sum(weights)
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left_over = total - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in by_remainder[:left_over]:
        floors[i] += 1
    return floors

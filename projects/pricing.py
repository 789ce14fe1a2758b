"""Price steps of a reward tier ("first 100 at 20.00, then 25.00") and the signed quotes that keep a price.

A tier's ``price_steps`` are early prices in order, each until a number of slots is claimed or until
a moment; once every step has passed, the tier's ``minimum_amount`` is its price. A backer who
opened the pledge form is quoted the price of that moment, signed (no state kept per visitor) and
kept for QUOTE_SECONDS; the hold's conditional UPDATE still refuses a slot past a step's count.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core import signing
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import check_amount

QUOTE_SECONDS = 15 * 60
QUOTE_SALT = "projects.pricing.quote"
PRICE_STEPS_MAX = 10


@dataclass(frozen=True)
class Price:
    """A tier's price now: ``amount``, and the step it comes from (None: the tier's own minimum)."""

    amount: int
    step: int | None = None
    until_claimed: int | None = None


def price_steps_clean(*, steps, minimum_amount: int, currency: str, launched_at: datetime | None) -> list[dict]:
    """Return ``steps`` as stored (``price``, ``until_claimed`` or ``until`` as ISO text); InvalidInput if bad."""
    if not isinstance(steps, list) or len(steps) > PRICE_STEPS_MAX:
        raise InvalidInput(
            gettext("A reward takes at most %(max)s price steps.") % {"max": PRICE_STEPS_MAX},
            code="invalid_price_steps",
            field="price_steps",
        )
    cleaned, previous_price, previous_count, previous_until = [], 0, 0, None
    earliest = launched_at or timezone.now()
    for step in steps:
        if not isinstance(step, dict) or set(step) - {"price", "until_claimed", "until"}:
            raise InvalidInput("Each price step has a price and until_claimed or until.", field="price_steps")
        price, count, until = step.get("price"), step.get("until_claimed"), step.get("until")
        if isinstance(until, str):
            until = parse_datetime(until)
        check_amount(price, currency)
        if price < previous_price:
            raise InvalidInput(
                gettext("A price step cannot be cheaper than the step before it."),
                code="price_step_below_previous",
                field="price_steps",
            )
        if (count is None) == (until is None):
            raise InvalidInput(
                gettext("Each price step ends either after a number claimed or at a date, not both."),
                code="invalid_price_steps",
                field="price_steps",
            )
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count <= previous_count):
            raise InvalidInput(
                gettext("Each price step must end after more claims than the one before it."),
                code="invalid_price_steps",
                field="price_steps",
            )
        if until is not None:
            if not isinstance(until, datetime) or timezone.is_naive(until):
                raise InvalidInput("A price step's date needs its time zone.", field="price_steps")
            if until <= earliest or (previous_until is not None and until <= previous_until):
                raise InvalidInput(
                    gettext("A price step's date must be after launch and after the step before it."),
                    code="price_step_date_before_launch",
                    field="price_steps",
                )
            previous_until = until
        previous_price, previous_count = price, count or previous_count
        cleaned.append({"price": price, "until_claimed": count, "until": until.isoformat() if until else None})
    if cleaned and minimum_amount < previous_price:
        raise InvalidInput(
            gettext("The reward's price after its steps cannot be cheaper than its last step."),
            code="price_step_below_previous",
            field="minimum_amount",
        )
    return cleaned


def price_now(reward, now: datetime | None = None) -> Price:
    """The tier's price at ``now`` from its steps as loaded (no database access)."""
    now = now or timezone.now()
    for index, step in enumerate(reward.price_steps or ()):
        if step["until_claimed"] is not None and reward.claimed_count < step["until_claimed"]:
            return Price(step["price"], index, step["until_claimed"])
        if step["until"] is not None and now < datetime.fromisoformat(step["until"]):
            return Price(step["price"], index)
    return Price(reward.minimum_amount)


def quote_sign(reward, price: Price) -> str:
    """A signed note of ``price`` for ``reward``, readable for QUOTE_SECONDS."""
    return signing.dumps({"r": reward.pk, "s": price.step, "p": price.amount}, salt=QUOTE_SALT, compress=True)


def quote_read(reward, token: str) -> Price | None:
    """The price ``token`` quoted for ``reward`` if it is genuine, for this tier and still fresh; else None."""
    try:
        data = signing.loads(token, salt=QUOTE_SALT, max_age=QUOTE_SECONDS)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    steps = reward.price_steps or []
    if not isinstance(data, dict) or data.get("r") != reward.pk:
        return None
    step = data.get("s")
    if step is None:
        # The price after the steps moves when a next step is opened: a quote of the old one asks again.
        return Price(reward.minimum_amount) if data.get("p") == reward.minimum_amount else None
    if not isinstance(step, int) or not 0 <= step < len(steps) or steps[step]["price"] != data.get("p"):
        return None  # the steps changed since: ask again
    return Price(steps[step]["price"], step, steps[step]["until_claimed"])

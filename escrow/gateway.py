"""Payment gateway interface and the sandbox gateway.

The rest of the platform talks to ``get_gateway()``, chosen by ``settings.PAYMENT_GATEWAY``, so a
real processor can be added beside the sandbox. Every call carries an idempotency key: a repeated
key returns the first result and moves no money again. Calls are made outside any row lock.

The sandbox behaves like a processor's test mode, keeping its records in the database:
``tok_visa`` / ``tok_mastercard`` succeed; ``tok_chargeDeclined`` and ``tok_insufficientFunds`` are
declined with distinct codes; ``tok_processingError`` fails transiently once per key and
succeeds when retried; refunds can never exceed what was charged. ``tok_card_<name>`` is a test
card of its own: it is charged like ``tok_visa`` and, unlike the public test tokens everybody
shares, has a card fingerprint (the same for the same name), as a real processor's charge carries.
"""

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.module_loading import import_string

from crowdfund_site.bulk import AnyOf, insert_rows
from crowdfund_site.db import create_unless_taken
from crowdfund_site.exceptions import Conflict

from .models import GatewayOperation, OperationKind, OperationStatus


@dataclass(frozen=True)
class GatewayResult:
    ok: bool
    reference: str = ""
    code: str = ""
    message: str = ""
    transient: bool = False
    # A charge's card as the processor identifies it (e.g. Stripe's ``card.fingerprint``): the
    # same for one card number whoever pays with it, never the payment token; at most 64
    # characters; "" when the processor names no card.
    card_fingerprint: str = ""


@dataclass(frozen=True)
class RefundRequest:
    idempotency_key: str
    charge_reference: str
    amount: int


class GatewayKeyReused(Conflict):
    default_code = "idempotency_key_reused"


class PaymentGateway(ABC):
    """What the platform needs from a payment processor."""

    @abstractmethod
    def charge(self, *, idempotency_key: str, amount: int, currency: str, token: str) -> GatewayResult:
        """Charge ``amount`` to the payment method behind ``token``."""

    @abstractmethod
    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> GatewayResult:
        """Return ``amount`` of an earlier charge to its payer."""

    @abstractmethod
    def payout(self, *, idempotency_key: str, amount: int, currency: str, destination: str) -> GatewayResult:
        """Send ``amount`` to a payee's bank account."""

    @abstractmethod
    def find_operation(self, *, idempotency_key: str) -> GatewayResult | None:
        """Return the final result recorded for a key, or None if nothing final happened."""

    def refund_many(self, *, requests: list[RefundRequest]) -> list[GatewayResult]:
        """Refund several charges; processors without a batch call do them one by one."""
        return [
            self.refund(idempotency_key=r.idempotency_key, charge_reference=r.charge_reference, amount=r.amount)
            for r in requests
        ]


def get_gateway() -> PaymentGateway:
    return import_string(settings.PAYMENT_GATEWAY)()


SANDBOX_TOKENS = {
    "tok_visa": None,
    "tok_mastercard": None,
    "tok_chargeDeclined": ("card_declined", "The card was declined."),
    "tok_insufficientFunds": ("insufficient_funds", "The card has insufficient funds."),
}
# The sandbox's test cards, as a payment processor's test mode documents them: pages take a
# card number and hand the gateway the token it stands for.
SANDBOX_CARDS = {
    "4242424242424242": "tok_visa",
    "5555555555554444": "tok_mastercard",
    "4000000000000002": "tok_chargeDeclined",
    "4000000000009995": "tok_insufficientFunds",
    "4000000000000119": "tok_processingError",
}
SANDBOX_TRANSIENT_TOKEN = "tok_processingError"  # noqa: S105 - a public test token, not a secret
SANDBOX_CARD_PREFIX = "tok_card_"


def sandbox_card_token(card_number: str) -> str | None:
    """Return the token of a sandbox test card from its number (spaces and dashes allowed), or None."""
    return SANDBOX_CARDS.get(card_number.replace(" ", "").replace("-", ""))


def sandbox_card_last4(token: str) -> str:
    """Return the last four digits of the test card behind ``token``, or "" for any other token."""
    return next((number[-4:] for number, card_token in SANDBOX_CARDS.items() if card_token == token), "")


def _card_fingerprint(token: str) -> str:
    """Return the sandbox's fingerprint of the card behind ``token``; "" for the shared test tokens."""
    if not token.startswith(SANDBOX_CARD_PREFIX) or token == SANDBOX_CARD_PREFIX:
        return ""
    return "fp_" + hashlib.sha256(token.encode()).hexdigest()[:24]


def _result(op: GatewayOperation) -> GatewayResult:
    return GatewayResult(
        ok=op.status == OperationStatus.SUCCEEDED,
        reference=op.reference,
        code=op.error_code,
        message=op.error_message,
        transient=op.status == OperationStatus.FAILED,
        card_fingerprint=_card_fingerprint(op.token) if op.kind == OperationKind.CHARGE else "",
    )


@dataclass
class _Charge:
    status: str
    amount: int
    currency: str
    refunded: int


_REFUND_COLUMNS = ["kind", "status", "idempotency_key", "amount", "currency", "charge", "created_at", "updated_at"]


def _charge_pk(reference: str) -> int | None:
    prefix, _, number = reference.partition("_")
    return int(number) if prefix == "ch" and number.isdigit() else None


class SandboxGateway(PaymentGateway):
    """A processor's test mode, stored in the database (see the module docstring)."""

    def charge(self, *, idempotency_key: str, amount: int, currency: str, token: str) -> GatewayResult:
        status, code, message = self._charge_outcome(token)
        # A fresh key (the usual case) is one INSERT; the unique key catches a repeat.
        op = create_unless_taken(
            GatewayOperation,
            kind=OperationKind.CHARGE,
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            token=token,
            status=status,
            error_code=code,
            error_message=message,
        )
        if op is not None:
            return _result(op)
        # A repeated key: answer with the first result, except that a transient failure is over
        # by now and the retry goes through.
        with transaction.atomic():
            op = GatewayOperation.objects.select_for_update().get(idempotency_key=idempotency_key)
            self._ensure_same(op, OperationKind.CHARGE, amount, currency)
            if op.status == OperationStatus.FAILED:
                op.status, op.error_code, op.error_message = OperationStatus.SUCCEEDED, "", ""
                op.attempts += 1
                op.save(update_fields=["status", "error_code", "error_message", "attempts", "updated_at"])
            return _result(op)

    @staticmethod
    def _charge_outcome(token: str) -> tuple[str, str, str]:
        """Return (status, error code, message) the sandbox gives a first charge with ``token``."""
        if token == SANDBOX_TRANSIENT_TOKEN:
            return (
                OperationStatus.FAILED,
                "processing_error",
                "The payment processor had a temporary problem. Please try again.",
            )
        if _card_fingerprint(token):
            return OperationStatus.SUCCEEDED, "", ""
        if token in SANDBOX_TOKENS:
            decline = SANDBOX_TOKENS[token]
            code, message = decline or ("", "")
            return (OperationStatus.DECLINED if decline else OperationStatus.SUCCEEDED), code, message
        return OperationStatus.DECLINED, "invalid_token", "The payment details are not valid."

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> GatewayResult:
        return self.refund_many(
            requests=[RefundRequest(idempotency_key=idempotency_key, charge_reference=charge_reference, amount=amount)]
        )[0]

    @transaction.atomic
    def refund_many(self, *, requests: list[RefundRequest]) -> list[GatewayResult]:
        charge_ids = sorted({pk for r in requests if (pk := _charge_pk(r.charge_reference)) is not None})
        # Lock the charges in id order, like every other caller, so batches never deadlock.
        charges = {
            pk: _Charge(status, amount, currency, refunded)
            for pk, status, amount, currency, refunded in GatewayOperation.objects.select_for_update()
            .filter(AnyOf(F("pk"), charge_ids), kind=OperationKind.CHARGE)
            .order_by("pk")
            .values_list("pk", "status", "amount", "currency", "refunded_amount")
        }
        # Read under the locks: a concurrent call that refunded the same keys has committed.
        keys = [r.idempotency_key for r in requests]
        done = {op.idempotency_key: op for op in GatewayOperation.objects.filter(AnyOf(F("idempotency_key"), keys))}
        results: dict[str, GatewayResult] = {}
        fresh: dict[str, tuple[RefundRequest, int, str]] = {}
        for r in requests:
            charge_pk = _charge_pk(r.charge_reference)
            charge = charges.get(charge_pk)
            if r.idempotency_key in fresh:  # the same refund twice in one batch is made once
                if fresh[r.idempotency_key][0].amount != r.amount:
                    raise GatewayKeyReused(
                        "This payment key was already used for a different amount.", code="idempotency_key_reused"
                    )
                continue
            if r.idempotency_key in done:
                op = done[r.idempotency_key]
                self._ensure_same(op, OperationKind.REFUND, r.amount, charge.currency if charge else op.currency)
                results[r.idempotency_key] = _result(op)
                continue
            if charge is None or charge.status != OperationStatus.SUCCEEDED:
                results[r.idempotency_key] = GatewayResult(
                    ok=False, code="charge_not_found", message="There is no successful charge to refund."
                )
                continue
            if r.amount <= 0 or charge.refunded + r.amount > charge.amount:
                results[r.idempotency_key] = GatewayResult(
                    ok=False, code="refund_exceeds_charge", message="A refund cannot exceed what was charged."
                )
                continue
            charge.refunded += r.amount
            fresh[r.idempotency_key] = (r, charge_pk, charge.currency)
        if fresh:
            # Plain rows rather than model instances: settlement refunds thousands per batch.
            now = timezone.now()
            ids = insert_rows(
                model=GatewayOperation,
                fields=_REFUND_COLUMNS,
                rows=[
                    (OperationKind.REFUND, OperationStatus.SUCCEEDED, r.idempotency_key, r.amount, cur, pk, now, now)
                    for r, pk, cur in fresh.values()
                ],
                returning_ids=True,
            )
            # Each touched charge's refunded amount becomes the sum of its refunds, in one statement.
            refunded = (
                GatewayOperation.objects.filter(charge=OuterRef("pk"), status=OperationStatus.SUCCEEDED)
                .values("charge")
                .annotate(total=Sum("amount"))
                .values("total")
            )
            GatewayOperation.objects.filter(AnyOf(F("pk"), sorted({pk for _, pk, _ in fresh.values()}))).update(
                refunded_amount=Subquery(refunded), updated_at=now
            )
            for (r, _, _), pk in zip(fresh.values(), ids, strict=True):
                results[r.idempotency_key] = GatewayResult(ok=True, reference=f"re_{pk}")
        return [results[r.idempotency_key] for r in requests]

    def payout(self, *, idempotency_key: str, amount: int, currency: str, destination: str) -> GatewayResult:
        with transaction.atomic():
            op = GatewayOperation.objects.filter(idempotency_key=idempotency_key).first()
            if op is not None:
                self._ensure_same(op, OperationKind.PAYOUT, amount, currency)
                return _result(op)
            return self._create(
                kind=OperationKind.PAYOUT,
                idempotency_key=idempotency_key,
                amount=amount,
                currency=currency,
                destination=destination,
                status=OperationStatus.SUCCEEDED,
            )

    def find_operation(self, *, idempotency_key: str) -> GatewayResult | None:
        op = GatewayOperation.objects.filter(idempotency_key=idempotency_key).first()
        if op is None or op.status == OperationStatus.FAILED:
            return None
        return _result(op)

    def _create(self, **fields) -> GatewayResult:
        op = create_unless_taken(GatewayOperation, **fields)
        if op is None:
            # Another request with the same key won the race: answer with its result.
            op = GatewayOperation.objects.get(idempotency_key=fields["idempotency_key"])
            self._ensure_same(op, fields["kind"], fields["amount"], fields["currency"])
        return _result(op)

    @staticmethod
    def _ensure_same(op: GatewayOperation, kind: str, amount: int, currency: str) -> None:
        if op.kind != kind or op.amount != amount or op.currency != currency:
            raise GatewayKeyReused(
                "This payment key was already used for a different amount.",
                code="idempotency_key_reused",
            )

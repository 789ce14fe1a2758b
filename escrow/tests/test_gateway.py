import pytest

from escrow.gateway import GatewayKeyReused, RefundRequest, SandboxGateway, get_gateway
from escrow.models import GatewayOperation, OperationKind, OperationStatus

pytestmark = pytest.mark.django_db

VISA = "tok_visa"


@pytest.fixture
def gateway():
    return SandboxGateway()


def charge(gateway, *, key="charge:1", amount=5_000, currency="USD", token=VISA):
    return gateway.charge(idempotency_key=key, amount=amount, currency=currency, token=token)


def test_the_platform_uses_the_configured_gateway():
    assert isinstance(get_gateway(), SandboxGateway)


@pytest.mark.parametrize("token", ["tok_visa", "tok_mastercard"])
def test_test_cards_are_charged(gateway, token):
    result = charge(gateway, token=token)
    assert result.ok
    assert not result.transient
    op = GatewayOperation.objects.get()
    assert (op.kind, op.status, op.amount, op.currency) == (
        OperationKind.CHARGE,
        OperationStatus.SUCCEEDED,
        5_000,
        "USD",
    )
    assert result.reference == op.reference == f"ch_{op.pk}"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
        ("tok_unknown", "invalid_token"),
    ],
)
def test_declines_carry_distinct_codes_and_repeat_the_same_answer(gateway, token, code):
    result = charge(gateway, token=token)
    assert (result.ok, result.transient, result.code) == (False, False, code)
    assert result.message
    again = charge(gateway, token="tok_visa")
    assert again == result
    assert GatewayOperation.objects.get().status == OperationStatus.DECLINED


def test_a_processing_error_fails_once_then_the_retry_succeeds(gateway):
    first = charge(gateway, token="tok_processingError")
    assert (first.ok, first.transient, first.code) == (False, True, "processing_error")
    assert gateway.find_operation(idempotency_key="charge:1") is None

    retried = charge(gateway, token="tok_processingError")
    assert retried.ok
    assert retried.reference == first.reference
    op = GatewayOperation.objects.get()
    assert (op.status, op.attempts) == (OperationStatus.SUCCEEDED, 2)
    assert gateway.find_operation(idempotency_key="charge:1") == retried


def test_charging_the_same_key_twice_charges_once(gateway):
    first = charge(gateway)
    assert charge(gateway) == first
    assert GatewayOperation.objects.count() == 1


@pytest.mark.parametrize("changed", [{"amount": 5_001}, {"currency": "EUR"}])
def test_a_key_reused_for_a_different_charge_is_refused(gateway, changed):
    charge(gateway)
    with pytest.raises(GatewayKeyReused) as refused:
        charge(gateway, **changed)
    assert refused.value.code == "idempotency_key_reused"
    assert list(GatewayOperation.objects.values_list("amount", "currency")) == [(5_000, "USD")]


def test_a_key_cannot_be_reused_across_kinds(gateway):
    charge(gateway, key="k")
    with pytest.raises(GatewayKeyReused):
        gateway.payout(idempotency_key="k", amount=5_000, currency="USD", destination="initiator:1:payouts")
    assert GatewayOperation.objects.count() == 1


def test_find_operation_knows_nothing_of_unknown_keys(gateway):
    assert gateway.find_operation(idempotency_key="never") is None


# --- Refunds ------------------------------------------------------------------------------------------


def test_a_refund_returns_the_charge_and_is_idempotent(gateway):
    charged = charge(gateway)
    refund = gateway.refund(idempotency_key="refund:1", charge_reference=charged.reference, amount=5_000)
    assert refund.ok
    assert refund.reference.startswith("re_")
    assert gateway.refund(idempotency_key="refund:1", charge_reference=charged.reference, amount=5_000) == refund
    op = GatewayOperation.objects.get(kind=OperationKind.CHARGE)
    assert op.refunded_amount == 5_000
    assert GatewayOperation.objects.filter(kind=OperationKind.REFUND).count() == 1


def test_partial_refunds_add_up_and_never_exceed_the_charge(gateway):
    charged = charge(gateway)
    assert gateway.refund(idempotency_key="r1", charge_reference=charged.reference, amount=3_000).ok
    too_much = gateway.refund(idempotency_key="r2", charge_reference=charged.reference, amount=2_001)
    assert (too_much.ok, too_much.code) == (False, "refund_exceeds_charge")
    assert gateway.refund(idempotency_key="r3", charge_reference=charged.reference, amount=2_000).ok
    assert not gateway.refund(idempotency_key="r4", charge_reference=charged.reference, amount=1).ok
    assert GatewayOperation.objects.get(kind=OperationKind.CHARGE).refunded_amount == 5_000


@pytest.mark.parametrize("amount", [0, -100])
def test_refunds_of_nothing_are_refused(gateway, amount):
    charged = charge(gateway)
    assert not gateway.refund(idempotency_key="r", charge_reference=charged.reference, amount=amount).ok
    assert GatewayOperation.objects.get(kind=OperationKind.CHARGE).refunded_amount == 0


@pytest.mark.parametrize("reference", ["declined", "ch_999999", "po_1", "nonsense", ""])
def test_only_successful_charges_can_be_refunded(gateway, reference):
    declined = charge(gateway, token="tok_chargeDeclined")
    reference = declined.reference if reference == "declined" else reference
    result = gateway.refund(idempotency_key="r", charge_reference=reference, amount=100)
    assert (result.ok, result.code) == (False, "charge_not_found")
    assert not GatewayOperation.objects.filter(kind=OperationKind.REFUND).exists()


def test_a_refund_key_reused_for_another_amount_is_refused(gateway):
    charged = charge(gateway)
    gateway.refund(idempotency_key="r", charge_reference=charged.reference, amount=1_000)
    with pytest.raises(GatewayKeyReused):
        gateway.refund(idempotency_key="r", charge_reference=charged.reference, amount=2_000)
    assert GatewayOperation.objects.get(kind=OperationKind.CHARGE).refunded_amount == 1_000


def test_refund_many_answers_each_request_in_order(gateway):
    a = charge(gateway, key="a", amount=1_000)
    b = charge(gateway, key="b", amount=2_000)
    results = gateway.refund_many(
        requests=[
            RefundRequest(idempotency_key="ra", charge_reference=a.reference, amount=1_000),
            RefundRequest(idempotency_key="rx", charge_reference="ch_0", amount=1_000),
            RefundRequest(idempotency_key="rb", charge_reference=b.reference, amount=2_001),
            RefundRequest(idempotency_key="rb2", charge_reference=b.reference, amount=2_000),
        ]
    )
    assert [r.ok for r in results] == [True, False, False, True]
    assert [r.code for r in results] == ["", "charge_not_found", "refund_exceeds_charge", ""]
    assert dict(
        GatewayOperation.objects.filter(kind=OperationKind.CHARGE).values_list("idempotency_key", "refunded_amount")
    ) == {
        "a": 1_000,
        "b": 2_000,
    }


def test_payouts_are_idempotent(gateway):
    first = gateway.payout(idempotency_key="payout:1", amount=9_500, currency="USD", destination="initiator:1:payouts")
    again = gateway.payout(idempotency_key="payout:1", amount=9_500, currency="USD", destination="initiator:1:payouts")
    assert first.ok
    assert again == first
    with pytest.raises(GatewayKeyReused):
        gateway.payout(idempotency_key="payout:1", amount=9_000, currency="USD", destination="initiator:1:payouts")
    assert GatewayOperation.objects.filter(kind=OperationKind.PAYOUT).count() == 1


def test_a_charge_names_its_card_by_a_fingerprint_and_the_shared_test_tokens_name_none(gateway):
    first = charge(gateway, key="charge:1", token="tok_card_alice")
    again = charge(gateway, key="charge:2", token="tok_card_alice")
    other = charge(gateway, key="charge:3", token="tok_card_bob")
    shared = [charge(gateway, key=f"charge:{token}", token=token) for token in ("tok_visa", "tok_chargeDeclined")]

    assert first.ok
    assert first.card_fingerprint
    assert "alice" not in first.card_fingerprint
    assert again.card_fingerprint == first.card_fingerprint != other.card_fingerprint
    assert [r.card_fingerprint for r in shared] == ["", ""]
    assert gateway.find_operation(idempotency_key="charge:1").card_fingerprint == first.card_fingerprint
    assert charge(gateway, key="charge:1", token="tok_card_alice") == first

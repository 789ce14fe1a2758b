import pytest
from django.core.management import call_command

from fulfilment.models import Holdback, Shipment
from settlement.verification import ledger_verify

from .helpers import holdback_balance


@pytest.mark.django_db
def test_the_demo_has_a_holdback_partly_released_partly_refunded_and_partly_held():
    call_command("seed_demo")
    holdback = Holdback.objects.get(campaign__title__startswith="Hand-thrown mugs")
    shipment = Shipment.objects.get(campaign=holdback.campaign)
    assert shipment.settled_at is not None
    assert shipment.released_amount > 0
    assert shipment.refunded_amount > 0
    assert 0 < holdback_balance(holdback.campaign) < holdback.amount
    assert ledger_verify() == []

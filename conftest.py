import pytest


@pytest.fixture(autouse=True)
def _sandbox_gateway(settings):
    settings.PAYMENT_GATEWAY = "escrow.gateway.SandboxGateway"

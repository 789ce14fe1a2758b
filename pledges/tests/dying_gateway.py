"""A sandbox gateway whose process dies the moment a charge has gone through: a crash to test against.

Set as ``PAYMENT_GATEWAY`` in a child process only. The charge is the sandbox's real one; then
the process is killed (SIGKILL: no exception handler, no ``finally``, no commit runs), as when
a machine loses power between the payment processor's answer and the hold.
"""

import os
import signal

from escrow.gateway import GatewayResult, SandboxGateway


class SandboxGatewayDyingAfterCharge(SandboxGateway):
    def charge(self, *, idempotency_key: str, amount: int, currency: str, token: str) -> GatewayResult:
        result = super().charge(idempotency_key=idempotency_key, amount=amount, currency=currency, token=token)
        os.kill(os.getpid(), signal.SIGKILL)
        return result
